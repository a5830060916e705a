//! The decoder allocates nothing per frame beyond splitting its buffer: counted with an
//! instrumented global allocator (counts, not timings, so the result does not depend on the
//! machine's load).
//!
//! The counters are process-wide, so this file holds a single test: with no other test in the
//! binary, no other thread allocates while a region is measured.

use std::alloc::System;

use bytes::{Bytes, BytesMut};
use posbridge_wire::{FRAME_OVERHEAD, Frame, FrameCodec, FrameFlags, FrameType, Message};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn codec_allocations() {
    // One-time set-up (CPU feature detection of the CRC kernel) happens outside the regions.
    let mut warm = BytesMut::new();
    FrameCodec::new()
        .encode(&Frame::data(0, &b"warm"[..]), &mut warm)
        .unwrap();
    FrameCodec::new().decode(&mut warm).unwrap().unwrap();

    the_counter_sees_allocations();
    decoding_frames_does_not_allocate_per_frame();
    encoding_into_a_reserved_buffer_does_not_allocate();
}

/// Guards the checks below against an allocator that counts nothing.
fn the_counter_sees_allocations() {
    let region = Region::new(GLOBAL);
    let msg = Message::decode(&[0x05, 0x02, 0x01, 0x07]).unwrap();
    let boxed = std::hint::black_box(Box::new(msg));
    assert!(region.change().allocations >= 1);
    drop(boxed);
}

fn decoding_frames_does_not_allocate_per_frame() {
    const FRAMES: usize = 1000;
    let codec = FrameCodec::new();
    let payload = Bytes::from(vec![0x42u8; 1024]);
    let mut wire = BytesMut::with_capacity(FRAMES * 1100);
    for seq in 0..FRAMES as u32 {
        codec
            .encode(&Frame::data(seq, payload.clone()), &mut wire)
            .unwrap();
    }
    let mut decoder = FrameCodec::new();
    let mut frames = Vec::with_capacity(FRAMES);

    let region = Region::new(GLOBAL);
    while let Some(frame) = decoder.decode(&mut wire).unwrap() {
        frames.push(frame);
    }
    let stats = region.change();

    assert_eq!(frames.len(), FRAMES);
    // The first split turns the buffer into a shared one (one small allocation for its
    // reference count); every later frame is a reference-counted slice of the same memory.
    assert!(
        stats.allocations <= 1,
        "{} allocations for {FRAMES} frames",
        stats.allocations
    );
    assert_eq!(stats.reallocations, 0);
}

fn encoding_into_a_reserved_buffer_does_not_allocate() {
    let codec = FrameCodec::new();
    let payload = vec![7u8; 256];
    let mut wire = BytesMut::with_capacity(300 * 100);
    let region = Region::new(GLOBAL);
    for seq in 0..100 {
        codec
            .encode_parts(FrameType::Data, FrameFlags::NONE, seq, &payload, &mut wire)
            .unwrap();
    }
    let stats = region.change();
    assert_eq!(stats.allocations + stats.reallocations, 0);
    assert_eq!(wire.len(), 100 * (256 + FRAME_OVERHEAD));
}
