// make-corpus: large, deterministic benchmark corpora from small real seed files (issue 27;
// bench/data_scale.sh and bench/README_data.md).
//
//   make-corpus text  --seed-files A.txt B.txt ... --bytes 1G  --out big.txt   [--seed 1]
//   make-corpus fasta --seed-files P.fasta ...     --bytes 10G --out big.fasta [--seed 1]
//                     [--min-len 50] [--max-len 2000] [--len-median 300] [--len-sigma 0.75]
//                     [--line-width 60|0] [--mutation-rate 0.05]
//   make-corpus stats FILE [--format auto|text|fasta] [--seed-files ...]
//
// text:  blocks of 100-500 consecutive lines, each from a random seed book (chosen in proportion
//        to its size) at a random line, with light word-level changes: each word (a run of ASCII
//        letters) is replaced, with probability --swap-rate, by a word drawn from the seeds' word
//        occurrences (so by frequency), keeping the original's capitalization pattern; with
//        probability --case-rate a word's capitalization is changed (Capitalized, lower or UPPER).
//        Every other byte is copied, so ASCII / UTF-8 seeds give ASCII / UTF-8 output; CR is
//        dropped (LF lines). Blocks are separated by one empty line.
// fasta: UniRef50-shaped records. Length: log-normal (median --len-median, sigma --len-sigma),
//        redrawn until it lies in [--min-len, --max-len]. Residues: crops of random seed proteins
//        (half of the records start at a protein's first residue), concatenated with further
//        random crops until the length is reached, then point mutations (each residue, with
//        probability --mutation-rate, replaced by a residue drawn from the seeds' composition).
//        Header: >UniRef50_<accession> <seed description> n=<cluster size> Tax=<seed organism>
//        TaxID=<number> RepID=<accession>_<seed mnemonic suffix>; accessions are unique
//        (a bijection of the record number). Sequences wrapped at --line-width (0 = one line).
// stats: bytes, lines / records, the length distribution, id uniqueness, line widths; with
//        --seed-files (text) also the share of long output lines that are verbatim seed lines.
//
// Sizes: a number with an optional suffix K, M, G or T, powers of 1024 (1G = 1,073,741,824
// bytes; KiB, MiB, GiB, TiB are accepted too). The output never exceeds --bytes: it ends at the
// last whole line (text) or whole record (fasta) that fits, so it is at most one line / record
// short of it. --out - writes to stdout (e.g. `| gzip -1 > big.txt.gz`), and an existing device or
// pipe is written as it is; otherwise the file is written under a temporary name and renamed when
// complete, so a killed run leaves no file of the final name. The same --seed, seed files and options give the same bytes.
//
// Standard library only; one thread; output built in a 16 MiB buffer, written with fwrite in
// 4 MiB+ blocks.

#include "make_corpus_common.h"

int main(int argc, char** argv) {
  using namespace make_corpus;
  const Options o = parse_args(argc, argv);
  if (o.mode == "text") return run_text(o);
  if (o.mode == "fasta") return run_fasta(o);
  return run_stats(o);
}
