# tests/garage-emu/: the emulator of Garage's K2V and S3 APIs that the garage
# driver's tests run against, and the tests of the emulator itself.
GARAGE_EMU = tests/garage-emu/garage-emu

.PHONY: check-garage-emu
check-garage-emu:
	python3 tests/garage-emu/test_emu.py

CHECKS += check-garage-emu
