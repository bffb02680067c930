"""The server's version: `tokensrv --version`, the tokensrv_build_info series, setup.cfg (which reads
it here). tokensrv-verify (verify/) has its own, tokensrv.verify.__version__: the two are released
together, at the same version (CHANGELOG.md)."""
__version__ = "0.1.0"
