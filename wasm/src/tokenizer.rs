//! Hugging Face tokenization (issue 3). See docs/ARCHITECTURE.md.
