"""SAM CLI's local commands on the example, with a real engine, image and emulator."""
