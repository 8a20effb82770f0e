// Variable-length strings, checked before libhdf5 reads them (see hdf5_workarounds.hpp).
//
// A variable-length string attribute stores, per value, the string's length and a reference
// (the address of a global heap collection, the index of an object in it); libhdf5 1.10 then
// trusts the collection: one whose free space claims 0 bytes makes it loop forever while
// parsing the collection (H5HG__cache_heap_deserialize), and a reference to an object the
// collection lacks, or whose size is not the string's length, makes it read or write out of
// bounds (H5HG_read). So before HDF5 reads such an attribute, layercache finds the attribute
// message in the object header, and parses each referenced collection as HDF5 will.
// Checkpoints layercache writes have none (their strings are fixed-length); earlier versions
// of layercache, and h5py for a Python str, wrote them.
#include <cstring>
#include <optional>

#include "hdf5_workarounds.hpp"
#include "layercache/errors.hpp"

namespace layercache::detail {
namespace {

constexpr unsigned attribute_message = 0x0C;
constexpr unsigned datatype_class_variable = 9;

std::size_t padded8(std::size_t n) { return (n + 7) / 8 * 8; }

}  // namespace

void HeaderCheck::variable_string(std::uint64_t address, const std::string& name,
                                  const std::string& what) const {
  const auto refused = [&](const std::string& how) {
    throw DataError("corrupt checkpoint: the variable-length string " + what + " " + how, file_);
  };
  std::vector<MessageArea> areas;
  walk_header(address, what, &areas);
  for (const MessageArea& area : areas) {
    const unsigned char* p = area.bytes.data();
    const unsigned char* end = p + area.bytes.size();
    const std::size_t header = area.version == 1 ? 8 : area.creation_order ? 6 : 4;
    while (static_cast<std::size_t>(end - p) >= header) {
      const unsigned type = area.version == 1 ? unsigned(little_endian(p, 2)) : p[0];
      const std::size_t size = little_endian(p + (area.version == 1 ? 2 : 1), 2);
      const unsigned flags = p[area.version == 1 ? 4 : 3];
      p += header;
      if (size > static_cast<std::size_t>(end - p)) break;
      const unsigned char* body = p;
      p += size;
      // Shared attribute messages live elsewhere: not found here, refused below.
      if (type != attribute_message || (flags & 0x02) || size < 8) continue;
      const unsigned version = body[0];
      if (version < 1 || version > 3) continue;
      const std::size_t name_size = little_endian(body + 2, 2);
      const std::size_t type_size = little_endian(body + 4, 2);
      const std::size_t space_size = little_endian(body + 6, 2);
      const auto pad = [&](std::size_t n) { return version == 1 ? padded8(n) : n; };
      const std::size_t name_at = version == 3 ? 9 : 8, type_at = name_at + pad(name_size);
      const std::size_t data_at = type_at + pad(type_size) + pad(space_size);
      if (name_size == 0 || data_at > size) continue;
      if (std::string(reinterpret_cast<const char*>(body + name_at), name_size - 1) != name ||
          body[name_at + name_size - 1] != 0)
        continue;
      // This is the attribute: a variable-length string type stored here, not shared.
      if (version > 1 && (body[1] & 0x01)) refused("has a shared datatype, which is not checked");
      const unsigned char* datatype = body + type_at;
      if (type_size < 8 || (datatype[0] & 0x0F) != datatype_class_variable ||
          (datatype[1] & 0x0F) != 1)
        refused("is not stored as one");
      // One value (the reader checks the dataspace first): its length, then the reference.
      const std::size_t reference = 4 + address_size_ + 4;
      if (size - data_at < reference) refused("has values of the wrong size");
      const unsigned char* value = body + data_at;
      const std::uint64_t length = little_endian(value, 4);
      const std::uint64_t collection = little_endian(value + 4, address_size_);
      const auto index = static_cast<std::uint32_t>(little_endian(value + 4 + address_size_, 4));
      if (collection != 0 || length != 0)  // else HDF5 reads nothing: an empty string
        heap_object(collection, index, length, what);
      return;
    }
  }
  refused("is not in its object's header (shared or stored densely), so it cannot be checked");
}

void HeaderCheck::heap_object(std::uint64_t address, std::uint32_t index, std::uint64_t length,
                              const std::string& what) const {
  const auto damaged = [&](const std::string& how) {
    throw DataError("corrupt checkpoint: the global heap that " + what + " refers to " + how,
                    file_);
  };
  // "GCOL", version 1, 3 reserved bytes, the collection's size; then objects, each with an
  // index (2 bytes), a reference count (2), 4 reserved bytes and its size, then its bytes
  // padded to 8. Object 0 is the free space, its size counting its own header.
  const std::size_t prefix = 8 + length_size_, object_header = 8 + length_size_;
  if (address == 0 || address >= eoa_ || eoa_ - address < prefix)
    damaged("lies outside the file");
  std::vector<unsigned char> image;
  read(address, prefix, image);
  if (std::memcmp(image.data(), "GCOL", 4) != 0 || image[4] != 1)
    damaged("is not a global heap collection");
  const std::uint64_t size = little_endian(image.data() + 8, length_size_);
  if (size < prefix || size > eoa_ - address || super_ + address > size_ ||
      size > size_ - super_ - address)
    damaged("has a size outside the file");
  read(address, static_cast<std::size_t>(size), image);
  const unsigned char* begin = image.data();
  const unsigned char* end = begin + image.size();
  std::optional<std::uint64_t> found;
  for (const unsigned char* p = begin + prefix; p < end;) {
    if (static_cast<std::size_t>(end - p) < object_header) break;  // free space, unrecorded
    const unsigned id = static_cast<unsigned>(little_endian(p, 2));
    const std::uint64_t object_size = little_endian(p + 8, length_size_);
    // The bytes HDF5 steps over to the next object: it never moves on from a free space of
    // size 0, and reads objects whose bytes run past the collection out of bounds.
    const std::uint64_t room = static_cast<std::uint64_t>(end - p);
    if (object_size > room) damaged("has an object that runs past its end");
    const std::uint64_t step = id == 0 ? object_size : object_header + padded8(object_size);
    if (step < object_header || step > room) damaged("has an object that runs past its end");
    if (id == index && id != 0) found = object_size;
    p += step;
  }
  if (!found) damaged("lacks the object it names");
  if (*found != length) damaged("holds an object of another length than the string's");
}

}  // namespace layercache::detail
