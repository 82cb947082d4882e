//! The process-wide environment: the config's key/value pairs, read by `GETENV` and
//! extended by `SETENV`. Keys can be added but never changed, as upstream.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::LazyLock;

static ENV: LazyLock<RwLock<HashMap<String, String>>> = LazyLock::new(Default::default);

pub fn get(key: &str) -> Option<String> {
    ENV.read().get(key).cloned()
}

/// Adds `key`; returns false (and changes nothing) if it is already set.
pub fn set(key: &str, value: &str) -> bool {
    let mut env = ENV.write();
    if env.contains_key(key) {
        return false;
    }
    env.insert(key.to_owned(), value.to_owned());
    true
}

/// Reads an integer key, writing `default` back when the key is absent.
pub fn get_int_or_init(key: &str, default: i64) -> i64 {
    match get(key) {
        Some(v) => v.trim().parse::<i64>().unwrap_or(0),
        None => {
            set(key, &default.to_string());
            default
        }
    }
}

/// Reads a string key, writing `default` back when the key is absent.
pub fn get_str_or_init(key: &str, default: &str) -> String {
    match get(key) {
        Some(v) => v,
        None => {
            set(key, default);
            default.to_owned()
        }
    }
}

/// Reads a boolean key (`"true"` is true), writing `default` back when absent.
pub fn get_bool_or_init(key: &str, default: bool) -> bool {
    match get(key) {
        Some(v) => v == "true",
        None => {
            set(key, if default { "true" } else { "false" });
            default
        }
    }
}
