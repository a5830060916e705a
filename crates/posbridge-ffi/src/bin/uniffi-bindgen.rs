//! Writes posbridge's Kotlin, Swift and Python bindings from the built library:
//! `cargo run -p posbridge-ffi --features bindgen --bin uniffi-bindgen -- generate --library
//! target/debug/libposbridge_ffi.so --language python --out-dir OUT`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
