#!/usr/bin/env python3
"""Top-5 classes of images: python predict.py --model PATH IMAGE..."""
import sys

from ghostnet_tf.cli.predict import main

if __name__ == "__main__":
    sys.exit(main())
