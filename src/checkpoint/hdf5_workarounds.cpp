// Workarounds for libhdf5 1.10, the series Debian 12 ships (1.10.8, which layercache builds
// and is tested against). They are harmless with later versions, which read the same files.
//
// - Writing: HDF5 1.10's H5Fget_file_image clears the status flags of a version 2 or 3
//   superblock in the image without updating the superblock's checksum;
//   fix_superblock_checksum recomputes it.
// - Reading: libhdf5 1.10 leaks memory whenever it refuses certain damaged object headers: the
//   header itself when it fails its checksum or claims to reach past the end of the file (HDF5
//   builds it from the header's first bytes, then drops it when the load fails; fixed upstream
//   in the 1.14 series in 2024, HDFGroup/hdf5 pull request 4445, never in the 1.10 series), and
//   its list of continuation chunks when one of those cannot be loaded. Nothing in HDF5's API
//   frees either, and the memory left out on HDF5's free lists keeps it from shutting down: at
//   exit it prints "HDF5: infinite loop closing library". So before HDF5 opens an object,
//   layercache reads the object's header through a file descriptor of its own and checks it as
//   HDF5 will (where it ends, its checksum, the same for each continuation chunk): HeaderCheck.
//   A damaged header is refused here, and HDF5 never reads it. The headers HDF5 reads while it
//   opens the file (the root group's, the superblock extension's) are checked before H5Fopen.
//
// Both need HDF5's metadata checksum, Bob Jenkins' lookup3 hash.
#include "hdf5_workarounds.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "layercache/errors.hpp"

namespace layercache::detail {
namespace {

// The 8 bytes an HDF5 superblock starts with.
constexpr char hdf5_signature[] = "\x89HDF\r\n\x1a\n";

// Bob Jenkins' lookup3 hash (hashlittle, initial value 0): HDF5's checksum of its metadata.
std::uint32_t lookup3(const unsigned char* k, std::size_t length) {
  const auto rot = [](std::uint32_t x, int r) { return (x << r) | (x >> (32 - r)); };
  std::uint32_t a, b, c;
  a = b = c = 0xdeadbeef + static_cast<std::uint32_t>(length);
  const auto word = [&](std::size_t at, std::size_t n) {  // n <= 4 little-endian bytes
    std::uint32_t w = 0;
    for (std::size_t i = 0; i < n; ++i) w |= std::uint32_t(k[at + i]) << (8 * i);
    return w;
  };
  for (; length > 12; length -= 12, k += 12) {
    a += word(0, 4), b += word(4, 4), c += word(8, 4);
    a -= c, a ^= rot(c, 4), c += b, b -= a, b ^= rot(a, 6), a += c;
    c -= b, c ^= rot(b, 8), b += a, a -= c, a ^= rot(c, 16), c += b;
    b -= a, b ^= rot(a, 19), a += c, c -= b, c ^= rot(b, 4), b += a;
  }
  if (length == 0) return c;
  a += word(0, std::min<std::size_t>(length, 4));
  if (length > 4) b += word(4, std::min<std::size_t>(length - 4, 4));
  if (length > 8) c += word(8, length - 8);
  c ^= b, c -= rot(b, 14), a ^= c, a -= rot(c, 11), b ^= a, b -= rot(a, 25);
  c ^= b, c -= rot(b, 16), a ^= c, a -= rot(c, 4), b ^= a, b -= rot(a, 14);
  c ^= b, c -= rot(b, 24);
  return c;
}

constexpr std::uint64_t undefined_address = ~std::uint64_t(0);

}  // namespace

void fix_superblock_checksum(std::vector<char>& image) {
  auto* bytes = reinterpret_cast<unsigned char*>(image.data());
  if (image.size() < 12 || std::memcmp(bytes, hdf5_signature, 8) != 0 ||
      (bytes[8] != 2 && bytes[8] != 3))
    return;
  const std::size_t offset = 12 + 4 * std::size_t(bytes[9]);  // 4 addresses, then the checksum
  if (image.size() < offset + 4) return;
  const std::uint32_t sum = lookup3(bytes, offset);
  for (int i = 0; i < 4; ++i) bytes[offset + i] = static_cast<unsigned char>(sum >> (8 * i));
}


std::optional<HeaderCheck> HeaderCheck::of(int fd, const std::string& file) {
  struct stat info {};
  HeaderCheck check;
  check.file_ = file;
  check.fd_ = fd;
  if (::fstat(check.fd_, &info) != 0) return std::nullopt;
  const auto size = static_cast<std::uint64_t>(info.st_size);
  check.size_ = size;
  // HDF5 looks for the superblock at 0, 512, 1024, 2048, ... (after a user block).
  std::vector<unsigned char> sb;
  for (std::uint64_t at = 0; at + 8 <= size; at = at == 0 ? 512 : 2 * at) {
    check.super_ = at;
    if (check.read_physical(at, 8, sb) && std::memcmp(sb.data(), hdf5_signature, 8) == 0)
      return check.read_superblock() ? std::optional<HeaderCheck>(std::move(check))
                                     : std::nullopt;
  }
  return std::nullopt;
}

void HeaderCheck::object_header(std::uint64_t address, const std::string& what) {
  if (address >= eoa_ || !checked_.insert(address).second) return;
  walk_header(address, what, nullptr);
}

void HeaderCheck::walk_header(std::uint64_t address, const std::string& what,
                              std::vector<MessageArea>* areas) const {
  if (address >= eoa_) return;
  const auto damaged = [&](const std::string& how) {
    throw DataError("corrupt checkpoint: the object header of " + what + " " + how, file_);
  };
  std::vector<unsigned char> image;
  const std::uint64_t room = eoa_ - address;
  read(address, static_cast<std::size_t>(std::min<std::uint64_t>(room, 512)), image);
  const unsigned char* p = image.data();
  std::vector<Chunk> chunks;
  int version = 1;
  bool creation_order = false;
  if (image.size() >= 4 && std::memcmp(p, "OHDR", 4) == 0) {  // version 2, with a checksum
    version = 2;
    if (image.size() < 6) damaged("is cut off by the end of the file");
    const unsigned flags = p[5];
    if (p[4] != 2 || (flags & ~0x3Fu) != 0) return;  // HDF5 refuses it without leaking
    // Signature, version, flags, [4 times], [attribute phase change], size of chunk 0.
    const unsigned size_bytes = 1u << (flags & 3);
    const std::size_t prefix =
        6 + ((flags & 0x20) ? 16 : 0) + ((flags & 0x10) ? 4 : 0) + size_bytes;
    if (prefix > image.size()) damaged("is cut off by the end of the file");
    const unsigned char* size_field = p + prefix - size_bytes;
    if ((flags & 0x10) && little_endian(size_field - 4, 2) < little_endian(size_field - 2, 2))
      return;
    creation_order = (flags & 0x04) != 0;
    const std::uint64_t chunk0 = little_endian(size_field, size_bytes);
    if (chunk0 > 0 && chunk0 < (creation_order ? 6u : 4u)) return;
    if (chunk0 > room - prefix || room - prefix - chunk0 < 4)
      damaged("reaches past the end of the file");
    const auto total = static_cast<std::size_t>(prefix + chunk0 + 4);
    read(address, total, image);
    if (!checksum_matches(image)) damaged("does not match its checksum");
    continuations(image.data() + prefix, image.data() + total - 4, version, creation_order,
                  chunks);
    if (areas)
      areas->push_back({{image.begin() + prefix, image.end() - 4}, version, creation_order});
  } else {  // version 1, without a checksum: only its extent can be checked
    if (image.empty() || p[0] != 1) return;
    if (image.size() < 16) damaged("is cut off by the end of the file");
    const std::uint64_t messages = little_endian(p + 2, 2), chunk0 = little_endian(p + 8, 4);
    if ((messages > 0 && chunk0 < 8) || (messages == 0 && chunk0 > 0)) return;
    if (chunk0 > room - 16) damaged("reaches past the end of the file");
    const auto total = static_cast<std::size_t>(16 + chunk0);
    read(address, total, image);
    continuations(image.data() + 16, image.data() + total, version, false, chunks);
    if (areas) areas->push_back({{image.begin() + 16, image.end()}, version, false});
  }
  // Continuation chunks, which may hold further continuation messages.
  std::set<std::uint64_t> seen;
  for (std::size_t i = 0; i < chunks.size() && i < max_chunks; ++i) {
    const Chunk chunk = chunks[i];
    if (!seen.insert(chunk.address).second) continue;
    if (chunk.address >= eoa_ || chunk.size > eoa_ - chunk.address)
      damaged("continues past the end of the file");
    if (version == 1) {
      read(chunk.address, static_cast<std::size_t>(chunk.size), image);
      continuations(image.data(), image.data() + image.size(), version, false, chunks);
      if (areas) areas->push_back({image, version, false});
      continue;
    }
    if (chunk.size < 8) damaged("has a continuation chunk too small to be one");
    read(chunk.address, static_cast<std::size_t>(chunk.size), image);
    if (std::memcmp(image.data(), "OCHK", 4) != 0 || !checksum_matches(image))
      damaged("has a continuation chunk that does not match its checksum");
    continuations(image.data() + 4, image.data() + image.size() - 4, version, creation_order,
                  chunks);
    if (areas) areas->push_back({{image.begin() + 4, image.end() - 4}, version, creation_order});
  }
}

bool HeaderCheck::read_physical(std::uint64_t offset, std::size_t n,
                                std::vector<unsigned char>& out) const {
  out.assign(n, 0);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t got =
        ::pread(fd_, out.data() + done, n - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return false;
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return true;
}

void HeaderCheck::read(std::uint64_t address, std::size_t n, std::vector<unsigned char>& out) const {
  if (!read_physical(super_ + address, n, out))
    throw IoError("cannot read checkpoint: " + std::string(std::strerror(errno)), file_);
}

bool HeaderCheck::read_superblock() {
  std::vector<unsigned char> sb;
  if (!read_physical(super_, 128, sb)) return false;
  const unsigned version = sb[8];
  std::size_t at = 0;
  if (version <= 1) {
    address_size_ = sb[13], length_size_ = sb[14];
    at = version == 0 ? 24 : 28;
  } else if (version <= 3) {
    address_size_ = sb[9], length_size_ = sb[10];
    at = 12;
  } else {
    return false;
  }
  const auto valid = [](unsigned n) { return n == 2 || n == 4 || n == 8; };
  if (!valid(address_size_) || !valid(length_size_)) return false;
  const auto address = [&] {
    const std::uint64_t value = little_endian(sb.data() + at, address_size_);
    at += address_size_;
    return value == (address_size_ == 8 ? ~std::uint64_t(0)
                                        : (std::uint64_t(1) << (8 * address_size_)) - 1)
               ? undefined_address
               : value;
  };
  const std::uint64_t base = address();
  const std::uint64_t extension = address();  // v0/1: the free-space info
  if (version >= 2) extension_ = extension;
  const std::uint64_t eof = address();
  if (version <= 1) {
    address();           // the driver information block
    at += length_size_;  // the root's symbol table entry: its name's offset, then its header
  }
  root_ = address();
  if (base == undefined_address || eof == undefined_address || eof < base) return false;
  // An end of address space beyond the file's real end claims bytes that are not there:
  // HDF5 refuses such a (truncated) file, and no header here may reach past what exists, so
  // a damaged size never makes this check read (or allocate) more than the file holds.
  eoa_ = std::min(eof - base, size_ > super_ ? size_ - super_ : 0);
  return true;
}

bool HeaderCheck::checksum_matches(const std::vector<unsigned char>& image) {
  const std::size_t n = image.size() - 4;
  return lookup3(image.data(), n) == little_endian(image.data() + n, 4);
}

void HeaderCheck::continuations(const unsigned char* p, const unsigned char* end, int version,
                                bool creation_order, std::vector<Chunk>& out) const {
  const std::size_t header = version == 1 ? 8 : creation_order ? 6 : 4;
  while (p < end && static_cast<std::size_t>(end - p) >= header) {
    const unsigned type = version == 1 ? unsigned(little_endian(p, 2)) : p[0];
    const std::size_t size = little_endian(p + (version == 1 ? 2 : 1), 2);
    p += header;
    if (size > static_cast<std::size_t>(end - p)) return;
    if (type == 0x10 && size >= address_size_ + length_size_)
      out.push_back(
          {little_endian(p, address_size_), little_endian(p + address_size_, length_size_)});
    p += size;
  }
}

}  // namespace layercache::detail
