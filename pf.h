// performer-cpp for C++ users: the one header a training program includes.
//
//   #include "pf.h"
//   pf::DataModule data(data_config);                      // prepared, memory-mapped corpora
//   pf::PerformerLM model(model_config);
//   pf::AdamW opt(model.named_parameters(), {.lr = 1e-3f});
//   pf::Var loss = pf::batch_loss(model, data.next_train_batch());
//   opt.zero_grad(); loss.backward(); opt.step();
//   pf::save_checkpoint("run.ckpt", model, opt, data, step);
//
// Or the whole loop: pf::Trainer (train/trainer.h) with pf::fit (train/fit.h). Threads and matrix
// precision are process-wide settings, set by name: pf::set_num_threads, pf::set_matmul_precision.
// Link the CMake target performer::train (or pf_train inside this project).
#pragma once

#include "autograd/gemm.h"
#include "autograd/ops.h"
#include "autograd/parallel.h"
#include "autograd/var.h"
#include "base/random.h"
#include "data/data_module.h"
#include "data/prepared.h"
#include "distributed/comm.h"
#include "distributed/grad_sync.h"
#include "nn/clip.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/optimizer.h"
#include "nn/schedule.h"
#include "performer/generate.h"
#include "performer/loss.h"
#include "performer/model.h"
#include "train/checkpoint.h"
#include "train/evaluate.h"
#include "train/fit.h"
#include "train/loss.h"
#include "train/run_directory.h"
#include "train/trainer.h"
