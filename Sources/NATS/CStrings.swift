import Foundation

/// Owns C copies of Swift strings for the duration of a C call that keeps pointers in structs.
final class CStrings {
    private var pointers: [UnsafeMutablePointer<CChar>] = []

    func copy(_ string: String) -> UnsafePointer<CChar> {
        let pointer = strdup(string)!
        pointers.append(pointer)
        return UnsafePointer(pointer)
    }

    func copy(_ string: String?) -> UnsafePointer<CChar>? {
        string.map { copy($0) }
    }

    deinit {
        for pointer in pointers { free(pointer) }
    }
}

extension String {
    /// A string from a possibly-NULL C string.
    init?(optionalCString pointer: UnsafePointer<CChar>?) {
        guard let pointer else { return nil }
        self = String(cString: pointer)
    }
}
