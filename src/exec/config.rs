//! Transport settings from `config.yaml` (`http: {max_retries, connect_timeout, timeout,
//! stream_idle_timeout, retry_non_idempotent}`; durations in seconds), and the size caps
//! (`max_response_bytes`, `max_error_body_bytes`, `max_stream_bytes`, `max_line_bytes`,
//! `max_fetch_all_bytes`, `max_download_bytes`; bytes, see [`super::caps`]).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::ExecConfig;
use crate::credentials::CONFIG_FILE;
use crate::error::{Error, Result};

impl ExecConfig {
    /// Read the `http` section of `<config_dir>/config.yaml`; a missing file or section gives the
    /// defaults. A present but wrong value is an error naming the key.
    pub fn load(config_dir: &Path) -> Result<ExecConfig> {
        let path = config_dir.join(CONFIG_FILE);
        let raw = crate::credentials::read_config_yaml(config_dir)?;
        ExecConfig::from_value(raw.get("http").unwrap_or(&Value::Null))
            .map_err(|m| Error::config(format!("{}: http.{m}", path.display())))
    }

    /// Apply an `http` section to the defaults.
    pub fn from_value(http: &Value) -> std::result::Result<ExecConfig, String> {
        let mut c = ExecConfig::default();
        let Value::Object(m) = http else {
            return if http.is_null() {
                Ok(c)
            } else {
                Err(" must be a mapping".into())
            };
        };
        let secs = |k: &str, v: &Value| -> std::result::Result<Duration, String> {
            // At most a year: `Duration::from_secs_f64` panics on huge values, and no
            // transport wait needs more.
            v.as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 365.0 * 24.0 * 3600.0)
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    format!("{k}: expected a positive number of seconds (at most a year)")
                })
        };
        let bytes = |k: &str, v: &Value| -> std::result::Result<u64, String> {
            v.as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| format!("{k}: expected a positive whole number of bytes"))
        };
        for (k, v) in m {
            match k.as_str() {
                "max_response_bytes" => c.caps.response = bytes(k, v)?,
                "max_error_body_bytes" => c.caps.error_body = bytes(k, v)?,
                "max_stream_bytes" => c.caps.stream = bytes(k, v)?,
                "max_line_bytes" => c.caps.line = bytes(k, v)?,
                "max_fetch_all_bytes" => c.caps.fetch_all = bytes(k, v)?,
                // `null` (the default): a download is written to disk as it arrives, uncapped.
                "max_download_bytes" => {
                    c.caps.download = if v.is_null() {
                        None
                    } else {
                        Some(bytes(k, v)?)
                    }
                }
                "max_retries" => {
                    c.max_retries = v
                        .as_u64()
                        .filter(|n| *n <= 20)
                        .ok_or("max_retries: expected an integer from 0 to 20")?
                        as u32
                }
                "connect_timeout" => c.connect_timeout = secs(k, v)?,
                "timeout" => c.timeout = secs(k, v)?,
                "stream_idle_timeout" => c.stream_idle_timeout = secs(k, v)?,
                "retry_non_idempotent" => {
                    c.retry_non_idempotent = v
                        .as_bool()
                        .ok_or("retry_non_idempotent: expected true or false")?
                }
                other => tracing::warn!("config.yaml: unknown setting http.{other} ignored"),
            }
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_http_section() {
        let c = ExecConfig::from_value(
            &serde_json::json!({"max_retries": 5, "timeout": 1.5, "stream_idle_timeout": 3}),
        )
        .unwrap();
        assert_eq!(c.max_retries, 5);
        assert_eq!(c.timeout, Duration::from_millis(1500));
        assert_eq!(c.stream_idle_timeout, Duration::from_secs(3));
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
        assert!(
            ExecConfig::from_value(&serde_json::json!({"timeout": -1}))
                .unwrap_err()
                .contains("timeout")
        );
        // Huge values are refused, not a panic.
        for huge in [1e20, 1e300] {
            assert!(
                ExecConfig::from_value(&serde_json::json!({"timeout": huge}))
                    .unwrap_err()
                    .contains("at most a year")
            );
        }
        let c = ExecConfig::from_value(&serde_json::json!({
            "max_response_bytes": 1000, "max_stream_bytes": 2000, "max_line_bytes": 30,
            "max_error_body_bytes": 40, "max_fetch_all_bytes": 50, "max_download_bytes": 60
        }))
        .unwrap();
        assert_eq!(
            c.caps,
            crate::exec::caps::Caps {
                response: 1000,
                error_body: 40,
                stream: 2000,
                line: 30,
                fetch_all: 50,
                download: Some(60)
            }
        );
        for bad in [json!(0), json!(-1), json!("64M"), json!(1.5)] {
            assert!(
                ExecConfig::from_value(&json!({"max_response_bytes": bad}))
                    .unwrap_err()
                    .contains("max_response_bytes")
            );
        }
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(ExecConfig::load(dir.path()).unwrap().max_retries, 2);
    }
}
