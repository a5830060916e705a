pub mod fake_bluez;
