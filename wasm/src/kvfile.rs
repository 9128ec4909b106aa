//! KV-cache files (issue 4). See docs/ARCHITECTURE.md.
