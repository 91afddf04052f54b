//! Recognising the sending server's software from a message's Received fields,
//! which whoever sent the message wrote: any bytes as a message, and any text
//! as one field.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = portcullis_senders::identify::identify(data, Some("mx.example.org"));
    let _ = portcullis_senders::identify::topmost_by_host(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = portcullis_senders::identify::recognise_text(text);
        let _ = portcullis_senders::identify::organisation(text);
    }
});
