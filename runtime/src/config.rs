//! The config file, read exactly as upstream reads it: a Lua chunk whose `_ENV` is the
//! result table (so standard globals are out of reach), `$NAME` replaced by the OS
//! environment variable before parsing, and `include "file"` relative to the including
//! file. Every key then becomes an env entry.

use mlua::{Lua, Table, Value};
use std::cell::RefCell;
use std::rc::Rc;

/// The error texts upstream prints on stderr (before exiting with status 1).
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

/// Replaces every `$NAME` (`NAME` of letters, digits and `_`) with its environment value.
pub fn substitute_env(
    code: &str,
    getenv: impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if end == 0 {
            out.push('$');
        } else {
            let name = &after[..end];
            match getenv(name) {
                Some(v) => out.push_str(&v),
                None => return Err(format!("os.getenv() failed: {name}")),
            }
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A Lua string literal for `s`, for writing configs: `$` is escaped because the
/// reader would take `$NAME` for an environment variable.
pub fn lua_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '$' => out.push_str("\\36"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Splits `a/b/c` into (`a/b/`, `c`); no directory gives None.
fn split_dir(path: &str) -> Option<(&str, &str)> {
    path.rfind('/').map(|i| (&path[..=i], &path[i + 1..]))
}

fn include(
    lua: &Lua,
    result: &Table,
    dir: &Rc<RefCell<String>>,
    filename: &str,
) -> mlua::Result<()> {
    let saved = dir.borrow().clone();
    let name = match split_dir(filename) {
        Some((path, name)) => {
            let next = if path.starts_with('/') {
                path.to_owned()
            } else {
                format!("{saved}{path}")
            };
            *dir.borrow_mut() = next;
            name
        }
        None => filename,
    };
    let full = format!("{}{}", dir.borrow(), name);
    let bytes = std::fs::read(&full).map_err(|e| {
        let reason = std::io::Error::from_raw_os_error(e.raw_os_error().unwrap_or(libc::ENOENT));
        mlua::Error::RuntimeError(format!("{full}: {}", describe(&reason)))
    })?;
    let code = String::from_utf8_lossy(&bytes);
    let code =
        substitute_env(&code, |n| std::env::var(n).ok()).map_err(mlua::Error::RuntimeError)?;
    lua.load(code.as_bytes())
        .set_name(format!("@{filename}"))
        .set_mode(mlua::chunk::ChunkMode::Text)
        .set_environment(result.clone())
        .exec()?;
    *dir.borrow_mut() = saved;
    Ok(())
}

/// `strerror` text without Rust's " (os error N)" suffix.
fn describe(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}

/// The innermost message of an error raised while loading.
fn root_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::RuntimeError(m) | mlua::Error::SyntaxError { message: m, .. } => m.clone(),
        mlua::Error::CallbackError { cause, .. } => root_message(cause),
        other => other.to_string(),
    }
}

/// Loads `path` into a list of env key/values.
pub fn load(path: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let lua = Lua::new();
    let run = || -> mlua::Result<Vec<(Value, Value)>> {
        let result = lua.create_table()?;
        let dir = Rc::new(RefCell::new("./".to_owned()));
        let index = lua.create_table()?;
        let (r, d) = (result.clone(), dir.clone());
        index.set(
            "include",
            lua.create_function(move |lua, name: String| include(lua, &r, &d, &name))?,
        )?;
        let meta = lua.create_table()?;
        meta.set("__index", index)?;
        result.set_metatable(Some(meta))?;
        include(&lua, &result, &dir, path)?;
        result.set_metatable(None)?;
        result.pairs::<Value, Value>().collect()
    };
    let pairs = run().map_err(|e| ConfigError(root_message(&e)))?;
    let mut env = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        let Value::String(key) = k else {
            return Err(ConfigError("Invalid config table".to_owned()));
        };
        let key = key.to_string_lossy();
        let value = match v {
            Value::Boolean(b) => b.to_string(),
            Value::String(_) | Value::Integer(_) | Value::Number(_) => match lua.coerce_string(v) {
                Ok(Some(s)) => s.to_string_lossy(),
                _ => return Err(ConfigError(format!("Invalid config table key = {key}"))),
            },
            _ => return Err(ConfigError(format!("Invalid config table key = {key}"))),
        };
        env.push((key, value));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lua_str_survives_the_reader() {
        let value = "a \"quoted\" $HOME\\path\nnext";
        let dir = std::env::temp_dir().join(format!("skynet-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config");
        std::fs::write(&file, format!("key = {}\n", lua_str(value))).unwrap();
        let env = load(&file.display().to_string()).unwrap();
        assert_eq!(env, vec![("key".to_owned(), value.to_owned())]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn substitution() {
        let get = |n: &str| (n == "X").then(|| "1".to_owned());
        assert_eq!(
            substitute_env("a=$X b=$ c", get),
            Ok("a=1 b=$ c".to_owned())
        );
        assert_eq!(
            substitute_env("$Y", get),
            Err("os.getenv() failed: Y".to_owned())
        );
    }
}
