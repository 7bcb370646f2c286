#!/usr/bin/env python3
"""Export a model to SavedModel and TFLite: python export.py --model PATH --dataset NAME -o DIR"""
import sys

from ghostnet_tf.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
