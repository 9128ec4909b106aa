//! The smallest exports: version and a byte round trip, used by the foundation tests to prove the
//! module loads and moves data both ways in every runtime.
use wasm_bindgen::prelude::*;

/// The crate version, so the JS side can check it loaded the module it expects.
#[wasm_bindgen(js_name = wasmVersion)]
pub fn wasm_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Returns the bytes reversed: proves a buffer crosses the boundary intact in both directions.
#[wasm_bindgen(js_name = reverseBytes)]
pub fn reverse_bytes(bytes: &[u8]) -> Vec<u8> {
    bytes.iter().rev().copied().collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn reverses() {
        assert_eq!(super::reverse_bytes(&[1, 2, 3]), vec![3, 2, 1]);
    }
}
