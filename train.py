#!/usr/bin/env python3
"""Train a model of ghostnet_tf: python train.py --config configs/<recipe>.yaml [--set key=value ...]"""
import sys

from ghostnet_tf.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
