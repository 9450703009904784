"""Peer feedback: giving it, anonymity that holds, requests on demand and on cadence."""
