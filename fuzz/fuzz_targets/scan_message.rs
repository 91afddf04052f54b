//! The scanner on any bytes as a message.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    portcullis_fuzz::scan_all(data);
});
