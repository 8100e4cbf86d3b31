//! Typing the new passcode on a terminal: no echo (one dot per character), and under it the
//! checklist of the requirements that govern the device, judged again at every keystroke by the
//! operator's own rules engine. Enter sends only when every line is met; Esc or Ctrl-C cancels.
//! Drawn on stderr with crossterm, so stdout stays free for the result.

use std::io::Write;

use crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use crossterm::style::Stylize;
use crossterm::{cursor, queue, terminal};
use zeroize::Zeroizing;

use super::requirements::Known;
use crate::passcode::{Passcode, RequiredCredential, judge};

/// One checklist line: met, and what it asks.
pub type Line = (bool, String);

/// The checklist for what is typed so far. Before the first character every line is shown unmet,
/// so the engineer sees the rules before typing.
pub fn checklist(typed: &str, known: &Known) -> (bool, Vec<Line>) {
    let (sample, empty) = if typed.is_empty() {
        let pin = known.governing.credential() <= RequiredCredential::Pin;
        (if pin { "0" } else { "a" }, true)
    } else {
        (typed, false)
    };
    let verdict = judge(Some(sample.as_bytes()), &known.governing, known.api_level);
    let lines = verdict
        .requirements
        .into_iter()
        .map(|c| (c.met && !empty, c.description))
        .collect();
    (verdict.passes && !empty, lines)
}

/// The block under the header: the checklist, then the prompt (the cursor stays at its end).
pub fn render(lines: &[Line], typed_chars: usize, note: Option<&str>, width: usize) -> Vec<String> {
    let fit = |s: String| -> String { s.chars().take(width.saturating_sub(1).max(20)).collect() };
    let mut out: Vec<String> = lines
        .iter()
        .map(|(met, what)| fit(format!("  {} {what}", if *met { '✓' } else { '✗' })))
        .collect();
    let mut prompt = format!("New passcode: {}", "•".repeat(typed_chars));
    if let Some(n) = note {
        prompt.push_str(&format!("   ({n})"));
    }
    out.push(fit(prompt));
    out
}

/// Restores the terminal however the entry ends.
struct Raw;

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = terminal::disable_raw_mode();
    }
}

/// Asks for the passcode on the terminal. `None`: the engineer cancelled.
pub fn read(header: &str, known: &Known) -> std::io::Result<Option<Passcode>> {
    let mut err = std::io::stderr();
    writeln!(err, "{header}")?;
    writeln!(err, "{}", known.header())?;
    writeln!(
        err,
        "Type the new passcode (not shown). Enter sends once every line is ✓; Esc cancels."
    )?;
    let _raw = {
        terminal::enable_raw_mode()?;
        Raw
    };
    let mut typed = Zeroizing::new(String::new());
    let mut note: Option<String> = None;
    let mut drawn = 0u16;
    loop {
        let (passes, lines) = checklist(&typed, known);
        let width = terminal::size().map_or(80, |(w, _)| w as usize);
        let block = render(&lines, typed.chars().count(), note.as_deref(), width);
        queue!(err, cursor::MoveToColumn(0))?;
        if drawn > 0 {
            queue!(err, cursor::MoveUp(drawn))?;
        }
        queue!(err, terminal::Clear(terminal::ClearType::FromCursorDown))?;
        for (i, text) in block.iter().enumerate() {
            let last = i + 1 == block.len();
            let styled = match lines.get(i) {
                Some((true, _)) => text.clone().green().to_string(),
                Some((false, _)) => text.clone().red().to_string(),
                None => text.clone(),
            };
            write!(err, "{styled}{}", if last { "" } else { "\r\n" })?;
        }
        err.flush()?;
        drawn = (block.len() - 1) as u16;

        let Event::Key(KeyEvent {
            code,
            modifiers,
            kind,
            ..
        }) = crossterm::event::read()?
        else {
            continue;
        };
        if kind == KeyEventKind::Release {
            continue;
        }
        note = None;
        let ctrl = modifiers.contains(KeyModifiers::CONTROL);
        match code {
            KeyCode::Esc => return finish(&mut err, None),
            KeyCode::Char('c' | 'd') if ctrl => return finish(&mut err, None),
            KeyCode::Char('u') if ctrl => typed.clear(),
            KeyCode::Backspace => {
                typed.pop();
            }
            KeyCode::Enter if passes => {
                let passcode = Passcode::from_secret_data(typed.as_bytes().to_vec()).ok();
                return finish(&mut err, passcode);
            }
            KeyCode::Enter => {
                let unmet = lines.iter().filter(|(met, _)| !met).count();
                note = Some(format!(
                    "not sent: {unmet} requirement{} not met",
                    if unmet == 1 { " is" } else { "s are" }
                ));
            }
            KeyCode::Char(c) if !ctrl => typed.push(c),
            _ => {}
        }
    }
}

fn finish(err: &mut impl Write, passcode: Option<Passcode>) -> std::io::Result<Option<Passcode>> {
    write!(err, "\r\n")?;
    err.flush()?;
    Ok(passcode)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passcode::{Governing, PasswordQuality, Requirements};

    fn known() -> Known {
        Known {
            governing: Governing::from_requirement(&Requirements {
                quality: PasswordQuality::NumericComplex,
                minimum_length: Some(6),
                ..Requirements::default()
            }),
            api_level: Some(34),
            sources: vec!["test".into()],
        }
    }

    #[test]
    fn each_rule_ticks_when_met_and_only_then_it_passes() {
        let k = known();
        let (passes, empty) = checklist("", &k);
        assert!(!passes && empty.iter().all(|(met, _)| !met) && !empty.is_empty());
        let (passes, short) = checklist("1234", &k);
        assert!(!passes);
        let unmet: Vec<&str> = short
            .iter()
            .filter(|l| !l.0)
            .map(|l| l.1.as_str())
            .collect();
        assert_eq!(unmet.len(), 2, "{unmet:?}");
        assert!(unmet.iter().any(|d| d.contains("at least 6")));
        assert!(unmet.iter().any(|d| d.contains("sequence")));
        let (passes, lines) = checklist("830417", &k);
        assert!(passes && lines.iter().all(|l| l.0));
        assert_eq!(lines.len(), short.len(), "the same lines while typing");
    }

    #[test]
    fn the_block_never_shows_what_is_typed() {
        let k = known();
        let (_, lines) = checklist("830417", &k);
        let block = render(&lines, 6, Some("note"), 80);
        assert_eq!(block.last().unwrap(), "New passcode: ••••••   (note)");
        assert!(!block.join("\n").contains("830417"));
        assert!(
            render(&lines, 6, None, 30)
                .iter()
                .all(|l| l.chars().count() <= 29)
        );
    }
}
