/// String operations at the code-point level, where tokenizers works (Swift's defaults work on graphemes
/// and canonical equivalence).
extension String {
    init<S: Sequence>(scalars: S) where S.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        self.init(view)
    }

    /// `hasPrefix` compares graphemes ("▁" is no prefix of "▁\u{301}"); tokenizers compares code points.
    func startsWithScalars(_ prefix: String) -> Bool {
        unicodeScalars.starts(with: prefix.unicodeScalars)
    }

    /// Lowercased one scalar at a time, as Rust's `char::to_lowercase` and Python's per-character
    /// `lower()` do: no context-dependent rules such as the final sigma.
    var lowercasedByScalar: String {
        var result = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            result.append(contentsOf: scalar.properties.lowercaseMapping.unicodeScalars)
        }
        return String(result)
    }
}
