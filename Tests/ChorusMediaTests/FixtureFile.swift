import ChorusTensor
import Foundation

enum Fixture {
    static func path(_ name: String) -> String {
        let file = name as NSString
        return Bundle.module.path(forResource: file.deletingPathExtension, ofType: file.pathExtension, inDirectory: "Fixtures")!
    }

    static func bytes(_ name: String) -> [UInt8] {
        Array(FileManager.default.contents(atPath: path(name))!)
    }

    static func tensors(_ name: String) throws -> SafeTensorsFile {
        try SafeTensorsFile(path: path(name))
    }
}
