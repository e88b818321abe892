//! The comparison binary of `tests/benches/startup.sh`: the least a `tessera token` could
//! do — read a JSON file and print one of its fields.
//!
//! `print_field FILE FIELD` prints the string value of the top-level `FIELD`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(field)) = (args.next(), args.next()) else {
        eprintln!("usage: print_field FILE FIELD");
        return ExitCode::from(2);
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("print_field: {path}: {error}");
            return ExitCode::from(1);
        }
    };
    let value: serde_json::Value = match serde_json::from_str(&text) {
        Ok(value) => value,
        Err(error) => {
            eprintln!("print_field: {path}: {error}");
            return ExitCode::from(1);
        }
    };
    match value.get(&field).and_then(serde_json::Value::as_str) {
        Some(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        None => {
            eprintln!("print_field: no string field {field:?}");
            ExitCode::from(1)
        }
    }
}
