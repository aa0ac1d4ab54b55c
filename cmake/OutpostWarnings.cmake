# Project-wide compiler flags: warnings, sanitizers. Third-party headers come in as SYSTEM.
add_compile_options(-Wall -Wextra -Wpedantic -Wshadow -Wconversion
                    $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>)
if(OUTPOST_WERROR)
  add_compile_options(-Werror)
endif()
if(OUTPOST_TSAN)
  # gcc warns that TSan cannot see std::atomic_thread_fence (Boost.Asio uses it): a known limit.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer
                      $<$<COMPILE_LANG_AND_ID:CXX,GNU>:-Wno-tsan>)
  add_link_options(-fsanitize=thread)
endif()
if(OUTPOST_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()
