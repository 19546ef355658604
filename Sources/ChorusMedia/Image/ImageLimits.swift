/// Bounds on decoded image size. Decoders check them against the header, before any pixel memory
/// is allocated, so a tiny file that claims to be enormous costs nothing.
public struct ImageLimits: Equatable, Sendable {
    public var maxWidth: Int
    public var maxHeight: Int
    public var maxPixels: Int

    public init(maxWidth: Int = 8192, maxHeight: Int = 8192, maxPixels: Int = 8192 * 8192) {
        self.maxWidth = maxWidth
        self.maxHeight = maxHeight
        self.maxPixels = maxPixels
    }

    public static let `default` = ImageLimits()

    public func check(width: Int, height: Int) throws {
        guard width > 0, height > 0 else {
            throw MediaError.invalidImage("header says the image is \(width)×\(height)")
        }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        if width > maxWidth || height > maxHeight || overflow || pixels > maxPixels {
            throw MediaError.imageTooLarge(width: width, height: height, limits: self)
        }
    }
}
