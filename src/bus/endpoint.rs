//! Bus endpoints in ZMQ notation: `ipc://path`, `inproc://name`, `tcp://host:port`.
//! A bare path (containing `/`) is IPC; a bare `host:port` is TCP; `~` and `{data_dir}` expand.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Where a bus socket binds or connects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix-domain socket file.
    Ipc(PathBuf),
    /// An in-process name (same ZMQ context only).
    Inproc(String),
    /// A TCP address; the host part is kept as given (`127.0.0.1`, `[::1]`, `localhost`).
    Tcp {
        /// Host name or IP literal.
        host: String,
        /// Port.
        port: u16,
    },
}

/// Why an endpoint string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointError(pub String);

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EndpointError {}

/// Longest IPC path the kernel accepts in `sockaddr_un.sun_path` (108 with the NUL).
pub const MAX_IPC_PATH: usize = 107;

impl Endpoint {
    /// Parses an endpoint, expanding `{data_dir}` and a leading `~`.
    pub fn parse(s: &str, data_dir: &Path) -> Result<Endpoint, EndpointError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(EndpointError("empty endpoint".into()));
        }
        let expanded = s.replace("{data_dir}", &data_dir.to_string_lossy());
        let ep = if let Some(path) = expanded.strip_prefix("ipc://") {
            Endpoint::Ipc(expand_home(path))
        } else if let Some(name) = expanded.strip_prefix("inproc://") {
            if name.is_empty() {
                return Err(EndpointError(format!("`{s}`: empty inproc name")));
            }
            Endpoint::Inproc(name.to_string())
        } else if let Some(addr) = expanded.strip_prefix("tcp://") {
            parse_tcp(addr).map_err(|e| EndpointError(format!("`{s}`: {e}")))?
        } else if expanded.contains("://") {
            return Err(EndpointError(format!(
                "`{s}`: unknown scheme (use ipc://, inproc:// or tcp://)"
            )));
        } else if expanded.contains('/') || expanded.starts_with('~') {
            Endpoint::Ipc(expand_home(&expanded))
        } else {
            parse_tcp(&expanded).map_err(|e| {
                EndpointError(format!(
                    "`{s}`: not a path, and not host:port ({e}); use ipc://, inproc:// or tcp://"
                ))
            })?
        };
        if let Endpoint::Ipc(path) = &ep {
            if path.as_os_str().is_empty() {
                return Err(EndpointError(format!("`{s}`: empty IPC path")));
            }
            if path.as_os_str().len() > MAX_IPC_PATH {
                return Err(EndpointError(format!(
                    "`{s}`: IPC path is {} bytes, the system allows {MAX_IPC_PATH}",
                    path.as_os_str().len()
                )));
            }
        }
        Ok(ep)
    }

    /// The ZMQ endpoint string.
    pub fn zmq(&self) -> String {
        match self {
            Endpoint::Ipc(p) => format!("ipc://{}", p.display()),
            Endpoint::Inproc(n) => format!("inproc://{n}"),
            Endpoint::Tcp { host, port } => format!("tcp://{host}:{port}"),
        }
    }

    /// Whether a TCP endpoint is on a loopback address (always true for IPC and inproc).
    pub fn is_local(&self) -> bool {
        match self {
            Endpoint::Tcp { host, .. } => {
                let h = host.trim_start_matches('[').trim_end_matches(']');
                h == "localhost"
                    || h.parse::<IpAddr>()
                        .map(|ip| ip.is_loopback())
                        .unwrap_or(false)
            }
            _ => true,
        }
    }

    /// The socket file of an IPC endpoint.
    pub fn ipc_path(&self) -> Option<&Path> {
        match self {
            Endpoint::Ipc(p) => Some(p),
            _ => None,
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.zmq())
    }
}

fn expand_home(path: &str) -> PathBuf {
    if path == "~" || path.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(path.trim_start_matches('~').trim_start_matches('/'));
        }
    }
    PathBuf::from(path)
}

/// `host:port` split: the host (an IPv6 address without its brackets) and the port; `None`
/// if there is no port, a bad one, or no host. The host is not resolved or checked further.
pub fn host_port(text: &str) -> Option<(&str, u16)> {
    let (host, port) = text.rsplit_once(':')?;
    let port = port.parse().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then_some((host, port))
}

fn parse_tcp(addr: &str) -> Result<Endpoint, String> {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        let host = match sa.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        return Ok(Endpoint::Tcp {
            host,
            port: sa.port(),
        });
    }
    let (host, port) = addr.rsplit_once(':').ok_or("missing :port")?;
    let port: u16 = port.parse().map_err(|_| format!("bad port `{port}`"))?;
    let valid_host = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if !valid_host {
        return Err(format!("bad host `{host}`"));
    }
    Ok(Endpoint::Tcp {
        host: host.to_string(),
        port,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_and_port() {
        assert_eq!(
            host_port("example.onion:9735"),
            Some(("example.onion", 9735))
        );
        assert_eq!(host_port("[::1]:62962"), Some(("::1", 62962)));
        assert_eq!(host_port("127.0.0.1:0"), Some(("127.0.0.1", 0)));
        for bad in ["", "host", "host:", ":9735", "[]:1", "host:70000", "host:x"] {
            assert_eq!(host_port(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_all_notations() {
        let dd = Path::new("/data");
        assert_eq!(
            Endpoint::parse("ipc:///tmp/x", dd).unwrap(),
            Endpoint::Ipc("/tmp/x".into())
        );
        assert_eq!(
            Endpoint::parse("{data_dir}/api", dd).unwrap(),
            Endpoint::Ipc("/data/api".into())
        );
        assert_eq!(
            Endpoint::parse("inproc://lnp-ctl", dd).unwrap(),
            Endpoint::Inproc("lnp-ctl".into())
        );
        let tcp = Endpoint::parse("127.0.0.1:62962", dd).unwrap();
        assert_eq!(tcp.zmq(), "tcp://127.0.0.1:62962");
        assert!(tcp.is_local());
        assert!(!Endpoint::parse("tcp://0.0.0.0:1", dd).unwrap().is_local());
        assert!(Endpoint::parse("tcp://[::1]:1", dd).unwrap().is_local());
        assert!(Endpoint::parse("tcp://localhost:1", dd).unwrap().is_local());
        assert!(Endpoint::parse("tcp://host:99999", dd).is_err());
        assert!(Endpoint::parse("http://x", dd).is_err());
        assert!(Endpoint::parse("justaname", dd).is_err());
        assert!(Endpoint::parse(&format!("/{}", "a".repeat(200)), dd).is_err());
    }
}
