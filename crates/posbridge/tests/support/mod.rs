pub mod ble_terminal;
