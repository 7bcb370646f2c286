#!/usr/bin/env python3
"""Evaluate a model of ghostnet_tf: python eval.py --model PATH --dataset NAME [--data-dir DIR]"""
import sys

from ghostnet_tf.cli.eval import main

if __name__ == "__main__":
    sys.exit(main())
