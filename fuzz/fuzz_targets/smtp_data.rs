//! The DATA receiver on any bytes, fed in pieces whose sizes the first bytes
//! pick (so a `<CR><LF>.<CR><LF>` split across reads is covered): it must find
//! the end marker, unstuff dots and enforce its limits without panicking, and
//! never report consuming more than it was given.
#![no_main]
use portcullis_smtp::data::DataReceiver;
use portcullis_smtp::{BareNewlinePolicy, DataLimits};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&shape, input)) = data.split_first() else {
        return;
    };
    let limits = DataLimits {
        max_size: 4096,
        max_line_length: 200,
        max_header_size: 1024,
        bare_newlines: if shape & 1 == 0 {
            BareNewlinePolicy::Reject
        } else {
            BareNewlinePolicy::Normalise
        },
    };
    let mut rx = DataReceiver::new(limits);
    if shape & 2 != 0 {
        rx.set_transparent();
    }
    let step = usize::from(shape >> 2) + 1;
    let mut at = 0;
    while at < input.len() {
        let end = (at + step).min(input.len());
        match rx.feed(&input[at..end]) {
            Some(used) => {
                assert!(used <= end - at, "consumed {used} of {}", end - at);
                break;
            }
            None => at = end,
        }
    }
    let _ = rx.finish();
});
