// Owning handles for OpenSSL objects, and the text of OpenSSL's error queue.
//
// OpenSSL hands out raw pointers that must be released with a type-specific free
// function; these aliases make that release automatic. openssl_error() turns the
// thread's error queue into one line of text and leaves the queue empty, so a later
// failure is never blamed on an earlier one.
#pragma once

#include <memory>
#include <string>

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace airlock::certs {

namespace detail {
template <auto Free>
struct Deleter {
  template <typename T>
  void operator()(T* pointer) const {
    Free(pointer);
  }
};
}  // namespace detail

using X509Ptr = std::unique_ptr<X509, detail::Deleter<X509_free>>;
using X509NamePtr = std::unique_ptr<X509_NAME, detail::Deleter<X509_NAME_free>>;
using X509ExtensionPtr = std::unique_ptr<X509_EXTENSION, detail::Deleter<X509_EXTENSION_free>>;
using X509StorePtr = std::unique_ptr<X509_STORE, detail::Deleter<X509_STORE_free>>;
using X509StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, detail::Deleter<X509_STORE_CTX_free>>;
using EvpPkeyPtr = std::unique_ptr<EVP_PKEY, detail::Deleter<EVP_PKEY_free>>;
using EvpPkeyCtxPtr = std::unique_ptr<EVP_PKEY_CTX, detail::Deleter<EVP_PKEY_CTX_free>>;
using SslCtxPtr = std::unique_ptr<SSL_CTX, detail::Deleter<SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, detail::Deleter<SSL_free>>;
using BioPtr = std::unique_ptr<BIO, detail::Deleter<BIO_free_all>>;
using BignumPtr = std::unique_ptr<BIGNUM, detail::Deleter<BN_free>>;
using Asn1IntegerPtr = std::unique_ptr<ASN1_INTEGER, detail::Deleter<ASN1_INTEGER_free>>;
using Asn1OctetStringPtr = std::unique_ptr<ASN1_OCTET_STRING, detail::Deleter<ASN1_OCTET_STRING_free>>;

// The thread's OpenSSL error queue as "reason; reason; ..." (empty when the queue is),
// draining the queue.
std::string openssl_error();

// `what` followed by ": " and openssl_error(), or `what` alone when the queue is empty.
std::string openssl_error(const std::string& what);

}  // namespace airlock::certs
