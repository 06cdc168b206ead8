//! Validation of the UDP keys (issue 16): `protocol`, `[files]`, a case's `faults` and
//! `peer`, and the datagram steps. Kept apart from the TCP checks of [`super`].

use super::super::udp::*;
use super::super::udp_raw::*;
use super::super::{Action, Matcher, Target};
use super::{parse_hex, RawAction, StepChecker, Validator};
use serde_spanned::Spanned;
use std::ops::Range;
use std::time::Duration;

/// A datagram step's raw payload, one variant per step (a [`super::RawAction`]).
pub(super) enum RawDatagramStep {
    Send(Spanned<RawDatagram>),
    Expect(Spanned<RawDatagramMatcher>),
    ExpectNone(Spanned<String>),
    ExpectTransfer(Spanned<RawTransfer>),
}

impl RawDatagramStep {
    /// The step's key in the spec.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Self::Send(_) => "send_datagram",
            Self::Expect(_) => "expect_datagram",
            Self::ExpectNone(_) => "expect_no_datagram",
            Self::ExpectTransfer(_) => "expect_transfer",
        }
    }
}

impl Validator<'_> {
    /// `protocol = "tcp" | "udp"` of a program section.
    pub(super) fn protocol(&mut self, p: &Option<Spanned<String>>, section: &str) -> Protocol {
        match p {
            None => Protocol::Tcp,
            Some(p) => match p.get_ref().trim() {
                "tcp" => Protocol::Tcp,
                "udp" => Protocol::Udp,
                other => {
                    self.err(
                        Some(p.span()),
                        format!("{section}.protocol"),
                        format!("unknown protocol {other:?}"),
                        Some(
                            "allowed: \"tcp\" (the default: SOCK_STREAM) or \"udp\" (SOCK_DGRAM)"
                                .into(),
                        ),
                    );
                    Protocol::Tcp
                }
            },
        }
    }

    /// A case's `faults` and `peer`.
    pub(super) fn udp_case(
        &mut self,
        key: &str,
        target: Target,
        faults: Option<Spanned<Vec<RawFault>>>,
        peer: Option<Spanned<RawProtocolPeer>>,
    ) -> UdpCase {
        let udp = self.udp_targets.contains(&target);
        let mut out = UdpCase::default();
        for (what, span) in [
            ("faults", faults.as_ref().map(|f| f.span())),
            ("peer", peer.as_ref().map(|p| p.span())),
        ] {
            if let (Some(span), false) = (span, udp) {
                self.err(
                    Some(span),
                    format!("{key}.{what}"),
                    format!("`{what}` is for UDP cases; the [{target}] section speaks TCP"),
                    Some(format!(
                        "add protocol = \"udp\" to [{target}], or remove `{what}`"
                    )),
                );
                return out;
            }
        }
        if let Some(f) = faults {
            let span = f.span();
            for (i, raw) in f.into_inner().into_iter().enumerate() {
                let k = format!("{key}.faults[{i}]");
                if let Some(fault) = self.fault(&span, &k, raw) {
                    out.faults.push(fault);
                }
            }
        }
        if let Some(p) = peer {
            out.peer = self.protocol_peer(&format!("{key}.peer"), target, p);
        }
        out
    }

    fn fault(&mut self, span: &Range<usize>, key: &str, f: RawFault) -> Option<Fault> {
        let nth = |n: u32, v: &mut Self, what: &str| -> Option<u32> {
            if n == 0 {
                v.err(
                    Some(span.clone()),
                    format!("{key}.{what}"),
                    "datagrams are counted from 1",
                    Some("the first datagram is 1".into()),
                );
                return None;
            }
            Some(n)
        };
        let fault = match (f.drop, f.duplicate, f.reorder, f.delay, f.truncate) {
            (Some(n), None, None, None, None) => Fault::Drop(nth(n, self, "drop")?),
            (None, Some(n), None, None, None) => Fault::Duplicate(nth(n, self, "duplicate")?),
            (None, None, Some(r), None, None) => {
                match r.as_slice() {
                    [n, m] if *n >= 1 && m > n => Fault::Reorder(*n, *m),
                    _ => {
                        self.err(Some(span.clone()), format!("{key}.reorder"), format!("{r:?} is not two datagram numbers, the first smaller"), Some("reorder = [1, 2]: the grader's 1st datagram goes out after its 2nd".into()));
                        return None;
                    }
                }
            }
            (None, None, None, Some(d), None) => {
                let by = self.duration(
                    &Spanned::new(span.clone(), d.by),
                    &format!("{key}.delay.by"),
                )?;
                Fault::Delay {
                    nth: nth(d.nth, self, "delay.nth")?,
                    by,
                }
            }
            (None, None, None, None, Some(t)) => Fault::Truncate {
                nth: nth(t.nth, self, "truncate.nth")?,
                to: t.to,
            },
            _ => {
                self.err(
                    Some(span.clone()),
                    key,
                    "a fault has exactly one of `drop`, `duplicate`, `reorder`, `delay`, `truncate`",
                    Some("write one fault per table: faults = [{ drop = 2 }, { duplicate = 1 }]".into()),
                );
                return None;
            }
        };
        Some(fault)
    }

    fn protocol_peer(
        &mut self,
        key: &str,
        target: Target,
        p: Spanned<RawProtocolPeer>,
    ) -> Option<ProtocolPeer> {
        let span = p.span();
        let p = p.into_inner();
        if p.protocol != "stop-and-wait" {
            self.err(
                Some(span),
                format!("{key}.protocol"),
                format!("unknown protocol peer {:?}", p.protocol),
                Some("allowed: \"stop-and-wait\"".into()),
            );
            return None;
        }
        let role = match (p.role.as_str(), target) {
            ("sender", Target::Server) => SawRole::Sender,
            ("receiver", Target::Client) => SawRole::Receiver,
            ("sender" | "receiver", _) => {
                self.err(
                    Some(span),
                    format!("{key}.role"),
                    format!(
                        "the reference is the {} in a {target} case",
                        if target == Target::Server {
                            "sender (the student's server receives)"
                        } else {
                            "receiver (the student's client sends)"
                        }
                    ),
                    None,
                );
                return None;
            }
            (other, _) => {
                self.err(
                    Some(span),
                    format!("{key}.role"),
                    format!("unknown role {other:?}"),
                    Some("allowed: \"sender\" (server cases), \"receiver\" (client cases)".into()),
                );
                return None;
            }
        };
        let data = match (&p.file, role) {
            (Some(f), SawRole::Sender) => self.file_bytes(&span, &format!("{key}.file"), f)?,
            (None, SawRole::Sender) => {
                self.err(
                    Some(span),
                    format!("{key}.file"),
                    "the sender needs the file it sends",
                    Some("add file = \"data.bin\" (a file of [files])".into()),
                );
                return None;
            }
            (_, SawRole::Receiver) => Vec::new(),
        };
        let rto = match &p.rto {
            Some(r) => self.duration(&Spanned::new(span, r.clone()), &format!("{key}.rto"))?,
            None => Duration::from_millis(300),
        };
        Some(ProtocolPeer::StopAndWait { role, data, rto })
    }

    /// The bytes of a file of [files].
    fn file_bytes(&mut self, span: &Range<usize>, key: &str, name: &str) -> Option<Vec<u8>> {
        match self.files.get(name) {
            Some(b) => Some(b.clone()),
            None => {
                let known: Vec<String> = self.files.keys().map(|k| format!("{k:?}")).collect();
                self.err(
                    Some(span.clone()),
                    key,
                    format!("{name:?} is not a file of [files]"),
                    Some(match known.is_empty() {
                        true => {
                            "add it to [files], e.g. \"data.bin\" = { random_bytes = \"2500B\" }"
                                .into()
                        }
                        false => format!("files: {}", known.join(", ")),
                    }),
                );
                None
            }
        }
    }
}

impl StepChecker<'_, '_> {
    fn udp(&self) -> bool {
        self.v.udp_targets.contains(&self.target)
    }

    /// A TCP step in a UDP case, or a datagram step in a TCP case: said at the step.
    pub(super) fn protocol_mismatch(
        &mut self,
        span: &Range<usize>,
        key: &str,
        action: &RawAction,
    ) -> bool {
        let target = self.target;
        let name = action.name();
        if self.udp() && action.is_tcp_only() {
            self.err(
                span.clone(),
                key,
                format!("`{name}` is a TCP step; the [{target}] section speaks UDP"),
                Some("use send_datagram, expect_datagram, expect_no_datagram".to_string()),
            );
            return true;
        }
        if !self.udp() && matches!(action, RawAction::Datagram(_)) {
            self.err(
                span.clone(),
                key,
                format!("`{name}` is a UDP step; the [{target}] section speaks TCP"),
                Some(format!("add protocol = \"udp\" to [{target}]")),
            );
            return true;
        }
        false
    }

    /// The action of a datagram step; `peer` is the step's `peer` modifier.
    pub(super) fn udp_action(
        &mut self,
        step: RawDatagramStep,
        key: &str,
        span: &Range<usize>,
        peer: &Option<Spanned<String>>,
        has_peer: bool,
    ) -> Option<Action> {
        let peer = match peer {
            Some(p) if self.target == Target::Client && p.get_ref() != "main" => {
                self.err(
                    p.span(),
                    &format!("{key}.peer"),
                    "a client case has one reference socket: where the client sends",
                    Some("remove `peer`".to_string()),
                );
                return None;
            }
            Some(p) => p.get_ref().clone(),
            None => "main".to_string(),
        };
        if has_peer && !matches!(step, RawDatagramStep::ExpectTransfer(_)) {
            let action = step.name();
            self.err(span.clone(), key, format!("`{action}` is a step of a step list; this case's `peer` plays a protocol"), Some("with a protocol peer, use expect_transfer (and expect_stdout, expect_exit, ...)".to_string()));
            return None;
        }
        Some(match step {
            RawDatagramStep::Send(raw) => {
                let bytes = self.datagram(raw.span(), key, raw.get_ref())?;
                Action::SendDatagram { peer, bytes }
            }
            RawDatagramStep::Expect(raw) => {
                let (sp, m) = (raw.span(), raw.get_ref());
                let from = match m.from.as_deref() {
                    None | Some("any") => DatagramFrom::Any,
                    Some("student") => DatagramFrom::Student,
                    Some(other) => {
                        self.err(sp, &format!("{key}.from"), format!("unknown sender {other:?}"), Some("allowed: \"student\" (the student's socket: the address the grader sent to) or \"any\"".to_string()));
                        return None;
                    }
                };
                let mut found: Vec<Matcher> = Vec::new();
                if m.any == Some(true) {
                    found.push(Matcher::Any);
                }
                if let Some(e) = &m.exact {
                    found.push(Matcher::Exact(self.datagram(
                        sp.clone(),
                        &format!("{key}.exact"),
                        e,
                    )?));
                }
                if let Some(h) = &m.exact_hex {
                    match parse_hex(h) {
                        Some(b) => found.push(Matcher::Exact(b)),
                        None => {
                            self.err(
                                sp,
                                &format!("{key}.exact_hex"),
                                format!("{h:?} is not hex bytes"),
                                None,
                            );
                            return None;
                        }
                    }
                }
                if let Some(c) = &m.contains {
                    found.push(Matcher::Contains(c.as_bytes().to_vec()));
                }
                if let Some(r) = &m.regex {
                    match regex::bytes::Regex::new(r) {
                        Ok(re) => found.push(Matcher::Regex(re)),
                        Err(e) => {
                            let last = e
                                .to_string()
                                .lines()
                                .last()
                                .unwrap_or("")
                                .trim()
                                .to_string();
                            self.err(
                                sp,
                                &format!("{key}.regex"),
                                format!("{r:?} is not a valid regex: {last}"),
                                None,
                            );
                            return None;
                        }
                    }
                }
                let Ok([matcher]) = <[Matcher; 1]>::try_from(found) else {
                    self.err(sp, key, "give exactly one matcher", Some("one of: any = true, exact, exact_hex, contains, regex (and optionally from)".to_string()));
                    return None;
                };
                Action::ExpectDatagram {
                    peer,
                    matcher,
                    from,
                }
            }
            RawDatagramStep::ExpectNone(w) => {
                let window = self.v.duration(&w, key)?;
                Action::ExpectNoDatagram { peer, window }
            }
            RawDatagramStep::ExpectTransfer(raw) => {
                if !has_peer {
                    self.err(raw.span(), key, "expect_transfer waits for the case's protocol peer, and this case has none", Some("add peer = { protocol = \"stop-and-wait\", role = ... } to the case".to_string()));
                    return None;
                }
                let t = raw.get_ref();
                match (t.complete, &t.equals_file) {
                    (Some(true), None) => Action::ExpectTransfer(Transfer::Complete),
                    (None, Some(name)) if self.target == Target::Client => {
                        let bytes =
                            self.v
                                .file_bytes(&raw.span(), &format!("{key}.equals_file"), name)?;
                        Action::ExpectTransfer(Transfer::Equals {
                            name: name.clone(),
                            bytes,
                        })
                    }
                    (None, Some(_)) => {
                        self.err(raw.span(), &format!("{key}.equals_file"), "in a server case the reference sends the file: nothing is received to compare", Some("use { complete = true }, and expect_stdout for what the receiver says".to_string()));
                        return None;
                    }
                    _ => {
                        self.err(
                            raw.span(),
                            key,
                            "give `complete = true` or `equals_file`",
                            None,
                        );
                        return None;
                    }
                }
            }
        })
    }

    /// The bytes of a datagram: a text, a table, or parts.
    fn datagram(&mut self, span: Range<usize>, key: &str, d: &RawDatagram) -> Option<Vec<u8>> {
        match d {
            RawDatagram::Text(t) => Some(t.as_bytes().to_vec()),
            RawDatagram::Table(t) => self.part(&span, key, t),
            RawDatagram::Parts(parts) => {
                let mut out = Vec::new();
                for (i, p) in parts.iter().enumerate() {
                    match p {
                        RawPartItem::Text(t) => out.extend_from_slice(t.as_bytes()),
                        RawPartItem::Table(t) => {
                            out.extend(self.part(&span, &format!("{key}[{i}]"), t)?)
                        }
                    }
                }
                Some(out)
            }
        }
    }

    fn part(&mut self, span: &Range<usize>, key: &str, t: &RawPartTable) -> Option<Vec<u8>> {
        let bad = |v: &mut Self, msg: String| {
            v.err(span.clone(), key, msg, Some("a part is one of: text (with repeat), { hex }, { u32be = N }, { file, from, to }".to_string()));
            None
        };
        let bytes = match (&t.text, &t.hex, t.u32be, &t.file) {
            (Some(text), None, None, None) => {
                text.as_bytes().repeat(t.repeat.unwrap_or(1) as usize)
            }
            (None, Some(h), None, None) => match parse_hex(h) {
                Some(b) => b.repeat(t.repeat.unwrap_or(1) as usize),
                None => return bad(self, format!("{h:?} is not hex bytes")),
            },
            (None, None, Some(n), None) => n.to_be_bytes().to_vec(),
            (None, None, None, Some(f)) => {
                let all = self.v.file_bytes(span, &format!("{key}.file"), f)?;
                let from = t.from.unwrap_or(0);
                let to = t.to.unwrap_or(all.len());
                if from > to || to > all.len() {
                    return bad(
                        self,
                        format!(
                            "bytes {from}..{to} are not inside {f:?} ({} bytes)",
                            all.len()
                        ),
                    );
                }
                all[from..to].to_vec()
            }
            _ => {
                return bad(
                    self,
                    "give exactly one of `text`, `hex`, `u32be`, `file`".to_string(),
                )
            }
        };
        if bytes.len() > 65507 {
            return bad(
                self,
                format!(
                    "{} bytes do not fit in one UDP datagram (65507 at most)",
                    bytes.len()
                ),
            );
        }
        Some(bytes)
    }
}
