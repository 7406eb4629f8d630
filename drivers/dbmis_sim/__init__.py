"""Simulated card reader (an emulated SLE4442 kept in a file) and a meter simulator.

A full citizen, like a virtual printer: the whole system runs and is tested on it without hardware.
"""
