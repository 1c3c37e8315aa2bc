//! The binder driver's transaction reports, read over generic netlink.
//!
//! The driver registers the generic netlink family `binder` with the multicast group `report`
//! (`Documentation/netlink/specs/binder.yaml`) and sends a `BINDER_CMD_REPORT` message there
//! when a transaction fails or looks like one-way spam. A [`ReportListener`] resolves the
//! family through the generic netlink controller, joins the group, and parses each message
//! into a [`Report`].

use std::{
    io,
    mem::size_of,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    time::Duration,
};

/// The family's name, as the driver registers it.
pub const FAMILY_NAME: &str = "binder";
/// The multicast group the reports go to.
pub const REPORT_GROUP: &str = "report";
/// `BINDER_CMD_REPORT`.
pub const CMD_REPORT: u8 = 1;

// The report's attributes (`enum` in `include/uapi/linux/android/binder_netlink.h`).
const A_ERROR: u16 = 1;
const A_CONTEXT: u16 = 2;
const A_FROM_PID: u16 = 3;
const A_FROM_TID: u16 = 4;
const A_TO_PID: u16 = 5;
const A_TO_TID: u16 = 6;
const A_IS_REPLY: u16 = 7;
const A_FLAGS: u16 = 8;
const A_CODE: u16 = 9;
const A_DATA_SIZE: u16 = 10;

// The generic netlink controller (`include/uapi/linux/genetlink.h`).
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const CTRL_ATTR_MCAST_GROUPS: u16 = 7;
const CTRL_ATTR_MCAST_GRP_NAME: u16 = 1;
const CTRL_ATTR_MCAST_GRP_ID: u16 = 2;

/// The size of `struct nlmsghdr`.
const NLMSG_HDRLEN: usize = 16;
/// The size of `struct genlmsghdr`.
const GENL_HDRLEN: usize = 4;
/// The size of `struct nlattr`.
const NLA_HDRLEN: usize = 4;
/// The type bits of `nla_type` (without `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;

/// One transaction report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The `BR_*` return the sender got (`BR_FAILED_REPLY`, `BR_ONEWAY_SPAM_SUSPECT`...).
    pub error: u32,
    /// The binder device's name.
    pub context: String,
    pub from_pid: u32,
    pub from_tid: u32,
    /// The receiving process, when the driver knew it.
    pub to_pid: Option<u32>,
    /// The receiving thread, when the driver knew it.
    pub to_tid: Option<u32>,
    pub is_reply: bool,
    pub flags: u32,
    pub code: u32,
    pub data_size: u32,
}

/// A generic netlink socket that has joined the binder `report` group.
pub struct ReportListener {
    socket: OwnedFd,
    family: u16,
}

impl ReportListener {
    /// Resolves the `binder` family and joins its `report` group. Fails with `ENOENT` if no
    /// driver has registered the family.
    pub fn join() -> io::Result<Self> {
        // SAFETY: Plain syscall.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                libc::NETLINK_GENERIC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `socket` just returned this descriptor, and nothing else owns it.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: An all-zero `sockaddr_nl` is valid; the family is set below.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as u16;
        // SAFETY: `addr` is a valid `sockaddr_nl` of the length given.
        let bound = unsafe {
            libc::bind(
                socket.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                size_of::<libc::sockaddr_nl>() as u32,
            )
        };
        if bound != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut listener = Self { socket, family: 0 };
        listener.set_timeout(Duration::from_secs(10))?;
        let (family, group) = listener.resolve()?;
        listener.family = family;
        // SAFETY: The option value is a valid `u32` of the length given.
        let joined = unsafe {
            libc::setsockopt(
                listener.socket.as_raw_fd(),
                libc::SOL_NETLINK,
                libc::NETLINK_ADD_MEMBERSHIP,
                (&group as *const u32).cast(),
                size_of::<u32>() as u32,
            )
        };
        if joined != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(listener)
    }

    /// Sets how long [`ReportListener::next`] waits for a report.
    pub fn set_timeout(&self, timeout: Duration) -> io::Result<()> {
        let tv = libc::timeval {
            tv_sec: timeout.as_secs() as _,
            tv_usec: timeout.subsec_micros() as _,
        };
        // SAFETY: The option value is a valid `timeval` of the length given.
        let set = unsafe {
            libc::setsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                size_of::<libc::timeval>() as u32,
            )
        };
        if set != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Asks the controller for the family's id and the id of its `report` group.
    fn resolve(&self) -> io::Result<(u16, u32)> {
        let mut name = FAMILY_NAME.as_bytes().to_vec();
        name.push(0);
        let mut request = Vec::new();
        put_attr(&mut request, CTRL_ATTR_FAMILY_NAME, &name);
        self.send(GENL_ID_CTRL, CTRL_CMD_GETFAMILY, &request)?;
        loop {
            let message = self.receive()?;
            for (kind, payload) in messages(&message) {
                if kind == libc::NLMSG_ERROR as u16 {
                    let errno = payload
                        .get(..4)
                        .map(|raw| i32::from_ne_bytes(raw.try_into().unwrap_or_default()))
                        .unwrap_or(0);
                    if errno != 0 {
                        return Err(io::Error::from_raw_os_error(-errno));
                    }
                    continue;
                }
                if kind != GENL_ID_CTRL || payload.len() < GENL_HDRLEN {
                    continue;
                }
                let mut family = None;
                let mut group = None;
                for (attr, value) in attrs(&payload[GENL_HDRLEN..]) {
                    match attr {
                        CTRL_ATTR_FAMILY_ID => family = read_u16(value),
                        CTRL_ATTR_MCAST_GROUPS => group = find_group(value, REPORT_GROUP),
                        _ => {}
                    }
                }
                return match (family, group) {
                    (Some(family), Some(group)) => Ok((family, group)),
                    _ => Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "the controller's answer has no family id or no report group",
                    )),
                };
            }
        }
    }

    /// Waits for the next report (up to the timeout: then `EAGAIN`).
    pub fn next(&self) -> io::Result<Report> {
        loop {
            let message = self.receive()?;
            for (kind, payload) in messages(&message) {
                if kind != self.family || payload.len() < GENL_HDRLEN || payload[0] != CMD_REPORT {
                    continue;
                }
                return Ok(parse_report(&payload[GENL_HDRLEN..]));
            }
        }
    }

    /// Every report that has arrived, without waiting.
    pub fn drain(&self) -> io::Result<Vec<Report>> {
        let mut reports = Vec::new();
        loop {
            let mut buffer = vec![0u8; 8192];
            // SAFETY: `buffer` has room for the length given.
            let len = unsafe {
                libc::recv(
                    self.socket.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if len < 0 {
                let err = io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::EAGAIN) {
                    return Ok(reports);
                }
                return Err(err);
            }
            buffer.truncate(len as usize);
            for (kind, payload) in messages(&buffer) {
                if kind == self.family && payload.len() >= GENL_HDRLEN && payload[0] == CMD_REPORT {
                    reports.push(parse_report(&payload[GENL_HDRLEN..]));
                }
            }
        }
    }

    /// Sends one generic netlink request to the family `family`.
    fn send(&self, family: u16, cmd: u8, attributes: &[u8]) -> io::Result<()> {
        let len = NLMSG_HDRLEN + GENL_HDRLEN + attributes.len();
        let mut message = Vec::with_capacity(len);
        message.extend_from_slice(&(len as u32).to_ne_bytes());
        message.extend_from_slice(&family.to_ne_bytes());
        message.extend_from_slice(&(libc::NLM_F_REQUEST as u16).to_ne_bytes());
        message.extend_from_slice(&1u32.to_ne_bytes()); // Sequence number.
        message.extend_from_slice(&0u32.to_ne_bytes()); // Port id: the kernel fills it in.
        message.extend_from_slice(&[cmd, 1, 0, 0]); // genlmsghdr: cmd, version, reserved.
        message.extend_from_slice(attributes);
        // SAFETY: `message` is readable for its length.
        let sent = unsafe {
            libc::send(
                self.socket.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one datagram (it may hold several netlink messages).
    fn receive(&self) -> io::Result<Vec<u8>> {
        let mut buffer = vec![0u8; 8192];
        // SAFETY: `buffer` has room for the length given.
        let len = unsafe {
            libc::recv(
                self.socket.as_raw_fd(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
                0,
            )
        };
        if len < 0 {
            return Err(io::Error::last_os_error());
        }
        buffer.truncate(len as usize);
        Ok(buffer)
    }
}

/// Parses the attributes of a `BINDER_CMD_REPORT` message.
fn parse_report(attributes: &[u8]) -> Report {
    let mut report = Report::default();
    for (attr, value) in attrs(attributes) {
        let number = read_u32(value).unwrap_or_default();
        match attr {
            A_ERROR => report.error = number,
            A_CONTEXT => {
                let text = value.split(|&b| b == 0).next().unwrap_or_default();
                report.context = String::from_utf8_lossy(text).into_owned();
            }
            A_FROM_PID => report.from_pid = number,
            A_FROM_TID => report.from_tid = number,
            A_TO_PID => report.to_pid = Some(number),
            A_TO_TID => report.to_tid = Some(number),
            A_IS_REPLY => report.is_reply = true,
            A_FLAGS => report.flags = number,
            A_CODE => report.code = number,
            A_DATA_SIZE => report.data_size = number,
            _ => {}
        }
    }
    report
}

/// Appends one attribute, padded to 4 bytes.
fn put_attr(out: &mut Vec<u8>, kind: u16, value: &[u8]) {
    out.extend_from_slice(&((NLA_HDRLEN + value.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(align4(out.len()), 0);
}

/// Rounds up to the 4-byte alignment of netlink messages and attributes.
fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The netlink messages in a datagram: each one's type and payload (after `nlmsghdr`).
fn messages(bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    let mut rest = bytes;
    while rest.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            break;
        }
        let kind = u16::from_ne_bytes([rest[4], rest[5]]);
        found.push((kind, &rest[NLMSG_HDRLEN..len]));
        rest = &rest[align4(len).min(rest.len())..];
    }
    found
}

/// The attributes in `bytes`: each one's type and value.
fn attrs(bytes: &[u8]) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    let mut rest = bytes;
    while rest.len() >= NLA_HDRLEN {
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        if len < NLA_HDRLEN || len > rest.len() {
            break;
        }
        let kind = u16::from_ne_bytes([rest[2], rest[3]]) & NLA_TYPE_MASK;
        found.push((kind, &rest[NLA_HDRLEN..len]));
        rest = &rest[align4(len).min(rest.len())..];
    }
    found
}

/// The id of the multicast group called `name` in a `CTRL_ATTR_MCAST_GROUPS` list.
fn find_group(groups: &[u8], name: &str) -> Option<u32> {
    attrs(groups).into_iter().find_map(|(_, group)| {
        let mut id = None;
        let mut matches = false;
        for (attr, value) in attrs(group) {
            match attr {
                CTRL_ATTR_MCAST_GRP_ID => id = read_u32(value),
                CTRL_ATTR_MCAST_GRP_NAME => {
                    matches = value.split(|&b| b == 0).next() == Some(name.as_bytes())
                }
                _ => {}
            }
        }
        if matches {
            id
        } else {
            None
        }
    })
}

fn read_u16(value: &[u8]) -> Option<u16> {
    Some(u16::from_ne_bytes(value.get(..2)?.try_into().ok()?))
}

fn read_u32(value: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(value.get(..4)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_attributes_parse() {
        let mut attributes = Vec::new();
        put_attr(&mut attributes, A_ERROR, &0x7211u32.to_ne_bytes());
        put_attr(&mut attributes, A_CONTEXT, b"binder\0");
        put_attr(&mut attributes, A_FROM_PID, &7u32.to_ne_bytes());
        put_attr(&mut attributes, A_IS_REPLY, &[]);
        put_attr(&mut attributes, A_CODE, &5u32.to_ne_bytes());
        let report = parse_report(&attributes);
        assert_eq!(report.error, 0x7211);
        assert_eq!(report.context, "binder");
        assert_eq!(report.from_pid, 7);
        assert!(report.is_reply);
        assert_eq!(report.code, 5);
        assert_eq!(report.to_pid, None);
    }

    #[test]
    fn groups_found_by_name() {
        let mut group = Vec::new();
        put_attr(&mut group, CTRL_ATTR_MCAST_GRP_NAME, b"report\0");
        put_attr(&mut group, CTRL_ATTR_MCAST_GRP_ID, &9u32.to_ne_bytes());
        let mut groups = Vec::new();
        put_attr(&mut groups, 1, &group);
        assert_eq!(find_group(&groups, "report"), Some(9));
        assert_eq!(find_group(&groups, "other"), None);
    }
}
