//! Every preset normalises any text without panicking, and every mapped range is a slice of
//! the original on character boundaries, in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mia_safety::Normalizer;

fuzz_target!(|text: &str| {
    for normalizer in [Normalizer::nfkc(), Normalizer::standard(), Normalizer::strict()] {
        let n = normalizer.normalize(text);
        let mut previous = (0, 0);
        for (at, range) in n.spans() {
            assert!(n.as_str().is_char_boundary(at));
            assert!(text.get(range.clone()).is_some(), "{range:?}");
            assert!(range.start >= previous.0 && range.end >= previous.1);
            previous = (range.start, range.end);
        }
        let len = n.as_str().len();
        let whole = n.original_range(0..len);
        assert!(whole.is_some_and(|r| text.get(r).is_some()));
    }
});
