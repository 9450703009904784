import time
from pyinstrument import Profiler
from tests.conftest import Bot

LEADER = "U0LEAD001"

async def test_profile(bot: Bot, example_contract: int) -> None:
    for _ in range(20):
        await bot.driver.command("/checkin", "", user=LEADER)
        await bot.fake.wait_for("views.update", count=1)
    n0 = len(bot.fake.calls_to("views.open"))
    prof = Profiler(interval=0.0005, async_mode="disabled")
    prof.start()
    t = time.perf_counter()
    for i in range(100):
        await bot.driver.command("/checkin", "", user=LEADER)
        await bot.fake.wait_for("views.open", count=n0 + i + 1)
    el = time.perf_counter() - t
    prof.stop()
    print("\nPER REQUEST ms", el * 10)
    print(prof.output_text(unicode=False, color=False, show_all=False))
