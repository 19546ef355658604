/// Keyword arguments keep their order only so that error messages are stable.
typealias Arguments = (positional: [TemplateExpr], keywords: [(String, TemplateExpr)])

indirect enum TemplateExpr: Sendable {
    case literal(TemplateValue)
    case name(String)
    case list([TemplateExpr])
    case dict([(TemplateExpr, TemplateExpr)])
    case attribute(TemplateExpr, String)
    case item(TemplateExpr, TemplateExpr)
    case slice(TemplateExpr, TemplateExpr?, TemplateExpr?, TemplateExpr?)
    case call(TemplateExpr, Arguments)
    case filter(TemplateExpr, String, Arguments)
    case test(TemplateExpr, String, [TemplateExpr], negated: Bool)
    case not(TemplateExpr)
    case negate(TemplateExpr)
    case and(TemplateExpr, TemplateExpr)
    case or(TemplateExpr, TemplateExpr)
    case binary(String, TemplateExpr, TemplateExpr)
    /// Python chains comparisons: `a < b < c` is `a < b and b < c`.
    case compare(TemplateExpr, [(String, TemplateExpr)])
    case conditional(then: TemplateExpr, condition: TemplateExpr, otherwise: TemplateExpr?)
}

indirect enum TemplateNode: Sendable {
    case text(String)
    case output(TemplateExpr, SourcePosition)
    case forLoop(targets: [String], iterable: TemplateExpr, filter: TemplateExpr?, body: [TemplateNode],
                 otherwise: [TemplateNode], SourcePosition)
    case ifChain([(TemplateExpr, [TemplateNode])], otherwise: [TemplateNode], SourcePosition)
    /// `set name = value`, or `set ns.attribute = value` on a namespace.
    case set(name: String, attribute: String?, TemplateExpr, SourcePosition)
    case setBlock(name: String, body: [TemplateNode])
}
