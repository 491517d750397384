//! Unified diffs of configuration files (`repair --postfix --check` shows each change this
//! way): a longest-common-subsequence over lines, three lines of context, the `---`/`+++`/`@@`
//! format of GNU diff -u.

/// Lines of context around each change (GNU diff's default).
const CONTEXT: usize = 3;

/// Most lines a side may have for the line-by-line comparison (its table is the product of
/// both sides). main.cf and master.cf have a few hundred lines; beyond this the whole file is
/// shown as replaced, which is still a correct diff.
pub const MAX_LINES: usize = 20_000;

/// One edited file's unified diff.
pub struct FileDiff {
    pub file: std::path::PathBuf,
    pub diff: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Keep,
    Delete,
    Insert,
}

/// The unified diff turning `old` into `new`, labelled `label` on both header lines; empty
/// when they are equal.
pub fn unified(label: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let ops = edit_script(&a, &b);
    // (op, index in a, index in b) for each step.
    let mut steps = Vec::with_capacity(ops.len());
    let (mut i, mut j) = (0, 0);
    for op in ops {
        steps.push((op, i, j));
        match op {
            Op::Keep => {
                i += 1;
                j += 1;
            }
            Op::Delete => i += 1,
            Op::Insert => j += 1,
        }
    }
    let mut out = format!("--- {label}\n+++ {label}\n");
    let changed: Vec<usize> = (0..steps.len())
        .filter(|&k| steps[k].0 != Op::Keep)
        .collect();
    let mut k = 0;
    while k < changed.len() {
        // A hunk: changes closer than 2 * CONTEXT lines apart share one.
        let start = changed[k].saturating_sub(CONTEXT);
        let mut last = changed[k];
        while k + 1 < changed.len() && changed[k + 1] <= last + 2 * CONTEXT {
            k += 1;
            last = changed[k];
        }
        let end = (last + CONTEXT + 1).min(steps.len());
        let hunk = &steps[start..end];
        let a_len = hunk.iter().filter(|s| s.0 != Op::Insert).count();
        let b_len = hunk.iter().filter(|s| s.0 != Op::Delete).count();
        let a_start = hunk[0].1 + usize::from(a_len > 0);
        let b_start = hunk[0].2 + usize::from(b_len > 0);
        out.push_str(&format!("@@ -{a_start},{a_len} +{b_start},{b_len} @@\n"));
        for &(op, i, j) in hunk {
            match op {
                Op::Keep => out.push_str(&format!(" {}\n", a[i])),
                Op::Delete => out.push_str(&format!("-{}\n", a[i])),
                Op::Insert => out.push_str(&format!("+{}\n", b[j])),
            }
        }
        k += 1;
    }
    out
}

/// The shortest edit script by an LCS table; beyond [`MAX_LINES`], delete all then insert all
/// (after the common first and last lines).
fn edit_script(a: &[&str], b: &[&str]) -> Vec<Op> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let suffix = a[prefix..]
        .iter()
        .rev()
        .zip(b[prefix..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (ma, mb) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    let mut ops = vec![Op::Keep; prefix];
    if ma.len() > MAX_LINES || mb.len() > MAX_LINES {
        ops.extend(std::iter::repeat_n(Op::Delete, ma.len()));
        ops.extend(std::iter::repeat_n(Op::Insert, mb.len()));
    } else {
        // lcs[i][j]: the LCS length of ma[i..] and mb[j..].
        let w = mb.len() + 1;
        let mut lcs = vec![0u32; (ma.len() + 1) * w];
        for i in (0..ma.len()).rev() {
            for j in (0..mb.len()).rev() {
                lcs[i * w + j] = if ma[i] == mb[j] {
                    lcs[(i + 1) * w + j + 1] + 1
                } else {
                    lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < ma.len() || j < mb.len() {
            if i < ma.len() && j < mb.len() && ma[i] == mb[j] {
                ops.push(Op::Keep);
                i += 1;
                j += 1;
            } else if i < ma.len() && (j == mb.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1])
            {
                // Deletions first on a tie, as GNU diff prints them.
                ops.push(Op::Delete);
                i += 1;
            } else {
                ops.push(Op::Insert);
                j += 1;
            }
        }
    }
    ops.extend(std::iter::repeat_n(Op::Keep, suffix));
    ops
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn one_changed_line_is_one_hunk_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\n";
        assert_eq!(
            unified("main.cf", old, new),
            "--- main.cf\n+++ main.cf\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"
        );
    }

    #[test]
    fn an_added_last_line_and_equal_texts() {
        assert_eq!(unified("x", "a\n", "a\n"), "");
        assert_eq!(
            unified("x", "a\n", "a\nb = c\n"),
            "--- x\n+++ x\n@@ -1,1 +1,2 @@\n a\n+b = c\n"
        );
    }

    #[test]
    fn the_output_is_what_patch_applies() {
        // GNU patch must turn old into new with this diff.
        let dir = std::env::temp_dir().join(format!("chainfix-diff-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let old: String = (0..40).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 3\n", "line three\n")
            .replace("line 30\n", "")
            + "added = 1\n";
        std::fs::write(dir.join("f"), &old).expect("write");
        std::fs::write(dir.join("p"), unified("f", &old, &new)).expect("write");
        let ok = std::process::Command::new("patch")
            .current_dir(&dir)
            .args(["-s", "f", "p"])
            .status();
        if let Ok(status) = ok {
            assert!(status.success());
            assert_eq!(std::fs::read_to_string(dir.join("f")).expect("read"), new);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
