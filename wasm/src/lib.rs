//! apekit's WebAssembly core. Each concept lives in its own module; this file only declares them.

pub mod kvfile;
pub mod smoke;
pub mod tokenizer;
