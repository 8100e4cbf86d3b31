//! A passcode spelled out for reading over the phone: digits as they are, letters by the NATO
//! alphabet (upper case said so), symbols by name.

const NATO: [&str; 26] = [
    "alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett",
    "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra", "tango",
    "uniform", "victor", "whiskey", "x-ray", "yankee", "zulu",
];

/// `7Kp#` → `7 · capital KILO · papa · hash`.
pub fn spell(passcode: &str) -> String {
    passcode
        .chars()
        .map(|c| match c {
            'a'..='z' => NATO[(c as u8 - b'a') as usize].to_owned(),
            'A'..='Z' => format!("capital {}", NATO[(c as u8 - b'A') as usize].to_uppercase()),
            '#' => "hash".into(),
            '%' => "percent".into(),
            '+' => "plus".into(),
            '=' => "equals".into(),
            '@' => "at".into(),
            '?' => "question mark".into(),
            '*' => "star".into(),
            '&' => "ampersand".into(),
            ' ' => "space".into(),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn spells_each_kind() {
        assert_eq!(super::spell("7Kp#"), "7 · capital KILO · papa · hash");
        assert_eq!(super::spell("830417"), "8 · 3 · 0 · 4 · 1 · 7");
    }
}
