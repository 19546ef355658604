import Foundation

/// `--plot out.svg`: latency percentiles against throughput across a sweep, one point per level, as an
/// SVG any browser opens. The knee of the curve is where a service saturates.
public struct LoadPlot {
    public let report: LoadReport

    public init(report: LoadReport) {
        self.report = report
    }

    static let width = 760.0, height = 460.0
    static let left = 70.0, right = 150.0, top = 50.0, bottom = 60.0
    static let series: [(name: String, percent: Double, color: String)] = [("p50", 50, "#1f77b4"), ("p90", 90, "#ff7f0e"), ("p99", 99, "#d62728")]

    /// A round step giving about `count` ticks up to `maximum`.
    static func tickStep(_ maximum: Double, count: Double = 5) -> Double {
        guard maximum > 0 else { return 1 }
        let raw = maximum / count, magnitude = pow(10, floor(log10(raw)))
        let fraction = raw / magnitude
        return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * magnitude
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func label(_ mode: LoadMode) -> String {
        switch mode {
        case .concurrency(let n): "c=\(n)"
        case .rate(let r, _): String(format: "%g/s", r)
        }
    }

    public var svg: String {
        let levels = report.levels.filter { $0.latency.count > 0 }
        let xs = levels.map(\.throughput)
        let ys = levels.map { Double($0.latency.percentile(99)) / 1000 }
        let xStep = Self.tickStep((xs.max() ?? 1) * 1.05), yStep = Self.tickStep((ys.max() ?? 1) * 1.05)
        let xMax = max(xStep, ceil((xs.max() ?? 1) * 1.05 / xStep) * xStep), yMax = max(yStep, ceil((ys.max() ?? 1) * 1.05 / yStep) * yStep)
        let plotWidth = Self.width - Self.left - Self.right, plotHeight = Self.height - Self.top - Self.bottom
        func px(_ x: Double) -> Double { Self.left + x / xMax * plotWidth }
        func py(_ y: Double) -> Double { Self.top + plotHeight - y / yMax * plotHeight }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var out = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
        out += #"<svg xmlns="http://www.w3.org/2000/svg" width="\#(Int(Self.width))" height="\#(Int(Self.height))" viewBox="0 0 \#(Int(Self.width)) \#(Int(Self.height))" font-family="sans-serif" font-size="12">"# + "\n"  // checked: constants
        out += #"<rect width="100%" height="100%" fill="white"/>"# + "\n"
        out += #"<text x="\#(f(Self.left))" y="24" font-size="15" font-weight="bold">\#(Self.escape("chorus load: \(report.method)"))</text>"# + "\n"
        out += #"<text x="\#(f(Self.left))" y="40" fill="rgb(85,85,85)">\#(Self.escape("\(report.target) · client \(report.machine)"))</text>"# + "\n"
        // Grid and ticks.
        var tick = 0.0
        while tick <= xMax + xStep / 2 {
            out += #"<line x1="\#(f(px(tick)))" y1="\#(f(Self.top))" x2="\#(f(px(tick)))" y2="\#(f(Self.top + plotHeight))" stroke="rgb(229,229,229)"/>"# + "\n"
            out += #"<text x="\#(f(px(tick)))" y="\#(f(Self.top + plotHeight + 16))" text-anchor="middle">\#(String(format: "%g", tick))</text>"# + "\n"
            tick += xStep
        }
        tick = 0
        while tick <= yMax + yStep / 2 {
            out += #"<line x1="\#(f(Self.left))" y1="\#(f(py(tick)))" x2="\#(f(Self.left + plotWidth))" y2="\#(f(py(tick)))" stroke="rgb(229,229,229)"/>"# + "\n"
            out += #"<text x="\#(f(Self.left - 6))" y="\#(f(py(tick) + 4))" text-anchor="end">\#(String(format: "%g", tick))</text>"# + "\n"
            tick += yStep
        }
        out += #"<rect x="\#(f(Self.left))" y="\#(f(Self.top))" width="\#(f(plotWidth))" height="\#(f(plotHeight))" fill="none" stroke="rgb(51,51,51)"/>"# + "\n"
        out += #"<text x="\#(f(Self.left + plotWidth / 2))" y="\#(f(Self.height - 18))" text-anchor="middle">throughput (requests/s)</text>"# + "\n"
        out += #"<text transform="translate(18 \#(f(Self.top + plotHeight / 2))) rotate(-90)" text-anchor="middle">latency (ms)</text>"# + "\n"
        // One line per percentile, a dot per level, the level named by the p99 dot.
        for (index, series) in Self.series.enumerated() {
            let points = levels.map { (px($0.throughput), py(Double($0.latency.percentile(series.percent)) / 1000)) }
            out += #"<polyline fill="none" stroke="\#(series.color)" stroke-width="2" points="\#(points.map { "\(f($0.0)),\(f($0.1))" }.joined(separator: " "))"/>"# + "\n"
            for point in points {
                out += #"<circle cx="\#(f(point.0))" cy="\#(f(point.1))" r="3.5" fill="\#(series.color)"/>"# + "\n"
            }
            let legendY = Self.top + 14 + Double(index) * 20
            out += #"<line x1="\#(f(Self.width - Self.right + 16))" y1="\#(f(legendY - 4))" x2="\#(f(Self.width - Self.right + 40))" y2="\#(f(legendY - 4))" stroke="\#(series.color)" stroke-width="2"/>"# + "\n"
            out += #"<text x="\#(f(Self.width - Self.right + 46))" y="\#(f(legendY))">\#(series.name) latency</text>"# + "\n"
        }
        for level in levels {
            let x = px(level.throughput), y = py(Double(level.latency.percentile(99)) / 1000)
            out += #"<text x="\#(f(x + 6))" y="\#(f(y - 6))" fill="rgb(51,51,51)" font-size="11">\#(Self.escape(Self.label(level.mode)))</text>"# + "\n"
        }
        if levels.isEmpty {
            out += #"<text x="\#(f(Self.left + plotWidth / 2))" y="\#(f(Self.top + plotHeight / 2))" text-anchor="middle">no successful calls to plot</text>"# + "\n"
        }
        out += "</svg>\n"
        return out
    }
}
