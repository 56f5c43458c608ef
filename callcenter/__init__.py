"""Home and community elderly-care call centre (居家和社区养老服务智慧信息平台)."""

__version__ = "0.1.0"
