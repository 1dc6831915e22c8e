from .func import handle
