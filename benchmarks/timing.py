"""The timing loop of every latency benchmark: calls timed one by one, and several models
timed in turn, so that a slow spell of a shared machine falls on each of them alike."""
import time


def timed(run, count):
    """[seconds of each of `count` calls of `run`]."""
    times = []
    for _ in range(count):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def timed_interleaved(runners, runs, peers=None, chunk=10, warmup=10):
    """{key: [seconds of each call]}: `runs` timed calls of each runner and peer, taken
    `chunk` at a time in turn, so that a slow spell of the machine falls on every model
    alike."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    if peers:
        peers.timed(warmup)
    times = {key: [] for key in runners}
    for _ in range(-(-runs // chunk)):
        for key, run in runners.items():
            times[key].extend(timed(run, chunk))
        for key, values in (peers.timed(chunk) if peers else {}).items():
            times.setdefault(key, []).extend(values)
    return times
