"""How long train.py takes to give the prompt back after Ctrl-C.

    python benchmarks/stop_latency.py [--config configs/fashion_mnist_ghost_resnet56.yaml]
        [--after 60,150] [--rounds 2]

Starts the recipe in a temporary run folder, sends SIGINT after each `--after` number of
seconds of training, and prints, per run, the seconds from the signal to the "stopped ...
state saved" message and to the process's exit. Needs the recipe's data (Fashion-MNIST:
apt-get install dataset-fashion-mnist).
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def one_stop(config, after, folder):
    process = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "train.py"), "--config", config,
         "--set", f"training.checkpoint_dir={folder}", "--set", f"run_name=stop_{after}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    said = {}

    def read():
        for line in process.stdout:
            if "stopped by signal" in line:
                said["message"] = time.perf_counter()
    reader = threading.Thread(target=read)
    reader.start()
    time.sleep(after)
    process.send_signal(signal.SIGINT)
    sent = time.perf_counter()
    process.wait()
    exited = time.perf_counter()
    reader.join()
    return said.get("message", float("nan")) - sent, exited - sent


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default=os.path.join(REPO, "configs",
                                                         "fashion_mnist_ghost_resnet56.yaml"))
    parser.add_argument("--after", default="60,150",
                        help="seconds of training before the signal, comma-separated")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    print("| trained for (s) | round | signal -> message (s) | signal -> exit (s) |")
    print("| ---: | ---: | ---: | ---: |")
    exits = []
    for round_index in range(args.rounds):
        for after in (float(value) for value in args.after.split(",")):
            with tempfile.TemporaryDirectory() as folder:
                message, exit_seconds = one_stop(args.config, after, folder)
            exits.append(exit_seconds)
            print(f"| {after:.0f} | {round_index + 1} | {message:.1f} | {exit_seconds:.1f} |",
                  flush=True)
    print(f"\nsignal -> exit: min {min(exits):.1f} s, median {statistics.median(exits):.1f} s, "
          f"max {max(exits):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
