"""Helpers the tests share: synthetic image folders and feature files, the commands run
the way the tests run them, and the fault suite's launcher and synthetic engine."""
