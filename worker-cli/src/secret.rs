//! [`Secret`]: a password or token whose `Debug` and `Display` print `<redacted>`, so a
//! secret cannot reach a log line, an error message or a `{:?}` of the structures that carry
//! it (`MineArgs`, `FileConfig`, `FilePool`, `PoolEntry`) by accident. The text is reached only
//! through [`Secret::expose`], at the few places that must send it (the pool login, the API's
//! token check).

use std::fmt;
use std::str::FromStr;

/// What `Debug` and `Display` print instead of the secret.
pub const REDACTED: &str = "<redacted>";

/// A password or token.
#[derive(Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    /// The secret itself: only for sending it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_string())
    }
}

/// For clap: any string is a valid secret.
impl FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_redact() {
        let s = Secret::from("hunter2");
        assert_eq!(
            format!("{s:?} {s} {:?}", Some(&s)),
            "<redacted> <redacted> Some(<redacted>)"
        );
        assert_eq!(s.expose(), "hunter2");
        #[derive(serde::Deserialize, Debug)]
        struct T {
            pass: Secret,
        }
        let t: T = toml::from_str("pass = \"hunter2\"").unwrap();
        assert!(!format!("{t:?}").contains("hunter2"));
        assert_eq!(t.pass.expose(), "hunter2");
    }
}
