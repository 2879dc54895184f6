//! Our own terminal while a container's terminal is relayed: raw mode
//! (restored on every way out: explicitly before `exit`, on drop for
//! errors and panics, and by the session on SIGTERM/SIGHUP), its size,
//! and Docker's detach keys.

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// Our terminal in raw mode while this lives.
pub struct RawMode(Option<Termios>);

impl RawMode {
    /// Raw mode on stdin if it is a terminal (else nothing to do).
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(&stdin) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(&stdin, SetArg::TCSANOW, &raw).is_err() {
            return RawMode(None);
        }
        RawMode(Some(saved))
    }

    /// No raw mode (stdin is not ours to change).
    pub fn none() -> RawMode {
        RawMode(None)
    }

    /// Put the terminal back as it was; idempotent.
    pub fn restore(&self) {
        if let Some(saved) = &self.0 {
            let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, saved);
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        self.restore();
    }
}

/// Our terminal's (rows, columns), if stdout is one.
pub fn size() -> Option<(u16, u16)> {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into memory we own.
    let rc = unsafe { nix::libc::ioctl(1, nix::libc::TIOCGWINSZ, &mut ws) };
    (rc == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// Docker's default detach keys, ctrl-p ctrl-q: typed in that order they
/// detach; a ctrl-p not followed by ctrl-q is passed on with what follows.
#[derive(Debug, Default)]
pub struct DetachKeys {
    held: bool,
}

const CTRL_P: u8 = 0x10;
const CTRL_Q: u8 = 0x11;

impl DetachKeys {
    /// What of `input` goes to the container, and whether the keys were typed
    /// (then what came after them is dropped).
    pub fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len() + 1);
        for &b in input {
            match (self.held, b) {
                (true, CTRL_Q) => return (out, true),
                (true, CTRL_P) => out.push(CTRL_P),
                (true, _) => {
                    self.held = false;
                    out.extend_from_slice(&[CTRL_P, b]);
                }
                (false, CTRL_P) => self.held = true,
                (false, _) => out.push(b),
            }
        }
        (out, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctrl_p_ctrl_q_detaches_and_anything_else_passes() {
        let mut k = DetachKeys::default();
        assert_eq!(k.feed(b"ls\r"), (b"ls\r".to_vec(), false));
        assert_eq!(k.feed(&[b'a', CTRL_P]), (b"a".to_vec(), false));
        assert_eq!(k.feed(b"x"), (vec![CTRL_P, b'x'], false));
        assert_eq!(k.feed(&[CTRL_P, CTRL_P]), (vec![CTRL_P], false));
        assert_eq!(k.feed(&[CTRL_Q, b'z']), (vec![], true));
        let mut k = DetachKeys::default();
        assert_eq!(k.feed(&[b'e', CTRL_P, CTRL_Q]), (b"e".to_vec(), true));
        let mut k = DetachKeys::default();
        assert_eq!(
            k.feed(&[CTRL_Q]),
            (vec![CTRL_Q], false),
            "ctrl-q alone passes"
        );
    }
}
