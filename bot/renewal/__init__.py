"""The end of a contract's period: its final figures, the leader's closing reflection, and the
owner's or sponsor's choice to close it or renew it as a new draft."""
