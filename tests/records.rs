//! Genomic input: the record reader (FASTA, FASTQ, lines; plain and gzip) and `score
//! --input` over records, whose every row must equal scoring that record alone.

use flashconv::records::{Case, Format, Record, Records};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flashconv-records-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("write input");
}

fn gzip(path: &Path, bytes: &[u8]) {
    let file = std::fs::File::create(path).expect("create gz");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip end");
}

fn read_all(path: &Path) -> (Format, Vec<Record>) {
    let records = Records::open(path).expect("open");
    let format = records.format();
    (format, records.map(|r| r.expect("record")).collect())
}

fn rec(id: &str, seq: &str) -> Record {
    Record {
        id: id.into(),
        seq: seq.as_bytes().to_vec(),
    }
}

/// The FASTA of the tests: multi-line records, a Windows line end, `N`, lower case, an
/// IUPAC code, an empty record, a description after the id, and a record of `long`
/// bases.
fn fasta(long: usize) -> Vec<u8> {
    let mut f = b">seq1 first record\nACGTACGTNN\nacgtACGT\r\n>empty\n>long\n".to_vec();
    f.extend(std::iter::repeat_n(b'G', long));
    f.extend_from_slice(b"\n>iupac\tdesc\nACGTRYKM\nAC\n");
    f
}

#[test]
fn fasta_fastq_and_lines_plain_and_gzip() {
    let dir = scratch("reader");
    let expected = vec![
        rec("seq1", "ACGTACGTNNacgtACGT"),
        rec("empty", ""),
        rec("long", &"G".repeat(300)),
        rec("iupac", "ACGTRYKMAC"),
    ];
    let fa = fasta(300);
    write(&dir.join("a.fa"), &fa);
    gzip(&dir.join("a.fa.gz"), &fa);
    for name in ["a.fa", "a.fa.gz"] {
        assert_eq!(
            read_all(&dir.join(name)),
            (Format::Fasta, expected.clone()),
            "{name}"
        );
    }
    // bgzip-style: two gzip members, read as one stream.
    let (a, b) = fa.split_at(40);
    let mut two = Vec::new();
    for part in [a, b] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(part).expect("gzip");
        two.extend(gz.finish().expect("gzip end"));
    }
    write(&dir.join("b.fa.gz"), &two);
    assert_eq!(read_all(&dir.join("b.fa.gz")), (Format::Fasta, expected));

    let fq = b"@r1 x\nACGT\n+\nIIII\n@r2\nNNac\n+\n!!!!\n";
    write(&dir.join("a.fq"), fq);
    let want = vec![rec("r1", "ACGT"), rec("r2", "NNac")];
    assert_eq!(read_all(&dir.join("a.fq")), (Format::Fastq, want));

    write(&dir.join("a.txt"), b"ACGT\r\n\nggcc\n");
    let want = vec![
        rec("line 1", "ACGT"),
        rec("line 2", ""),
        rec("line 3", "ggcc"),
    ];
    assert_eq!(read_all(&dir.join("a.txt")), (Format::Lines, want));

    write(&dir.join("none.fa"), b"");
    assert_eq!(read_all(&dir.join("none.fa")).1, vec![]);
    assert_eq!(rec("x", "acgN").text(Case::Upper), "ACGN");
    assert_eq!(rec("x", "acgN").text(Case::Keep), "acgN");
}

#[test]
fn malformed_records_name_the_file_and_record() {
    let dir = scratch("bad");
    // A FASTQ record whose qualities are shorter than its bases.
    let path = dir.join("bad.fq");
    write(&path, b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nII\n");
    let got: Vec<_> = Records::open(&path).expect("open").collect();
    assert!(got[0].is_ok(), "{:?}", got[0]);
    let err = got[1].as_ref().expect_err("r2 is malformed").to_string();
    assert!(err.contains("bad.fq") && err.contains("record 2"), "{err}");
    assert_eq!(got.len(), 2, "nothing is read after a malformed record");
    let missing = Records::open(&dir.join("missing.fa")).expect_err("no file");
    assert!(missing.to_string().contains("missing.fa"), "{missing}");
}

fn flashconv(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flashconv"))
        .args(args)
        .output()
        .expect("run flashconv")
}

/// The NLL `score --text SEQ --json` gives for one sequence.
fn nll_alone(model: &str, text: &str, extra: &[&str]) -> f64 {
    let out = flashconv(
        &[
            &["score", "--model", model, "--json", "--text", text],
            extra,
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    v["nll"].as_f64().expect("nll")
}

#[test]
fn score_rows_equal_each_record_scored_alone() {
    let dir = scratch("score");
    let model = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hf_tiny");
    // max_seq_len 160: the 200-base record is too long.
    let fa = fasta(200);
    write(&dir.join("a.fa"), &fa);
    gzip(&dir.join("a.fa.gz"), &fa);
    let mut tables = Vec::new();
    let configs: [(&str, &[&str]); 4] = [
        ("a.fa", &[]),
        ("a.fa.gz", &[]),
        ("a.fa", &["--uppercase"]),
        // One record per session rather than all three side by side (padded).
        ("a.fa", &["--batch", "1"]),
    ];
    for (name, extra) in configs {
        let out_path = dir.join(format!("{name}{}.tsv", extra.join("")));
        let out = flashconv(
            &[
                &["score", "--model", model, "--input"][..],
                &[
                    dir.join(name).to_str().expect("path"),
                    "--out",
                    out_path.to_str().expect("path"),
                ],
                extra,
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(1), "a record failed: exit status 1");
        let table = std::fs::read_to_string(&out_path).expect("rows");
        let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split('\t').collect()).collect();
        assert_eq!(
            rows[0],
            ["id", "tokens", "nll", "mean_nll", "perplexity", "error"]
        );
        let ids: Vec<&str> = rows[1..].iter().map(|r| r[0]).collect();
        assert_eq!(ids, ["seq1", "empty", "long", "iupac"], "input order");
        for (row, text) in rows[1..]
            .iter()
            .zip(["ACGTACGTNNacgtACGT", "", "", "ACGTRYKMAC"])
        {
            if row[0] == "long" {
                assert!(row[5].contains("160") && row[2].is_empty(), "{row:?}");
                continue;
            }
            let nll: f64 = row[2].parse().expect("nll");
            let case = if extra.contains(&"--uppercase") {
                extra
            } else {
                &[]
            };
            let alone = nll_alone(model, text, case);
            let rel = (nll - alone).abs() / alone.abs().max(1e-12);
            assert!(
                rel <= 1e-5 || (nll == 0.0 && alone == 0.0),
                "{row:?}: {nll} vs {alone}"
            );
            assert!(row[5].is_empty(), "{row:?}");
        }
        tables.push(table);
    }
    assert_eq!(tables[0], tables[1], "the gzip copy gives the same rows");
    assert_ne!(tables[0], tables[2], "lower case is [UNK] unless folded");
}
