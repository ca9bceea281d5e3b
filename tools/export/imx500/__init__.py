"""tools.export --trunk imx500: the trunk compiled for the Raspberry Pi AI Camera's sensor (docs/ai-camera.md)."""
