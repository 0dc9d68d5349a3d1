"""Deployment: a trained run as ONNX graphs (onnx_export.py), ONNX Runtime as a search
engine (engine.py), and a translator that needs no PyTorch (standalone.py)."""
